// vadmon review page: cameras, events, clip playback, reviewer feedback. No dependencies.
"use strict";

const $ = (id) => document.getElementById(id);
const SVG = "http://www.w3.org/2000/svg";
const state = { cursor: null, filters: {}, current: null, timer: null };

async function api(path, options = {}) {
  const init = { credentials: "same-origin", ...options };
  init.headers = { "X-Vadmon-Request": "1", ...(options.headers || {}) };
  const resp = await fetch(path, init);
  if (resp.status === 401) {
    showLogin();
    throw new Error("login required");
  }
  if (!resp.ok) throw new Error(`${path}: HTTP ${resp.status}`);
  return resp.status === 204 ? null : resp.json();
}

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "text") node.textContent = v;
    else if (k === "cls") node.className = v;
    else node.setAttribute(k, v);
  }
  for (const c of children) if (c) node.append(c);
  return node;
}

function clock(ts) {
  return ts ? new Date(ts * 1000).toLocaleString() : "–";
}

function showLogin() {
  $("main").hidden = true;
  $("logout").hidden = true;
  $("login").hidden = false;
  if (state.timer) clearInterval(state.timer);
  state.timer = null;
}

async function login(ev) {
  ev.preventDefault();
  $("login-error").textContent = "";
  const resp = await fetch("/api/session", {
    method: "POST", credentials: "same-origin",
    headers: { "Content-Type": "application/json", "X-Vadmon-Request": "1" },
    body: JSON.stringify({ token: $("token").value }),
  });
  $("token").value = "";
  if (!resp.ok) {
    $("login-error").textContent = "wrong token";
    return;
  }
  start();
}

async function logout() {
  await api("/api/logout", { method: "POST" });
  showLogin();
}

// --- cameras -----------------------------------------------------------------------------

function renderCameras(cams) {
  const box = $("cameras");
  const select = $("f-camera");
  for (const cam of cams) {
    let card = box.querySelector(`[data-camera="${CSS.escape(cam.name)}"]`);
    if (!card) {
      card = el("div", { cls: "camera", "data-camera": cam.name },
        el("img", { alt: `latest frame of ${cam.name}` }),
        el("div", {}, el("span", { cls: "name", text: cam.name }), " ", el("span", { cls: "state" })),
        el("div", { cls: "reason" }));
      box.append(card);
      select.append(el("option", { value: cam.name, text: cam.name }));
    }
    const badge = card.querySelector(".state");
    badge.textContent = cam.state;
    badge.className = `state ${cam.state}`;
    const score = cam.score === null ? "" : ` · score ${cam.score.toFixed(2)}`;
    card.querySelector(".reason").textContent = (cam.reason || "") + score;
    if (cam.last_frame_ts) card.querySelector("img").src = `${cam.latest_url}?t=${cam.last_frame_ts}`;
  }
}

async function refreshCameras() {
  try {
    renderCameras(await api("/api/cameras"));
  } catch (err) {
    if (err.message !== "login required") $("cameras").dataset.error = err.message;
  }
}

// --- events ------------------------------------------------------------------------------

function curve(points, ev) {
  const svg = document.createElementNS(SVG, "svg");
  svg.setAttribute("viewBox", "0 0 200 60");
  svg.setAttribute("preserveAspectRatio", "none");
  if (!points.t.length) return svg;
  const t0 = points.t[0], t1 = Math.max(points.t[points.t.length - 1], t0 + 1e-3);
  const x = (t) => ((t - t0) / (t1 - t0)) * 200;
  const span = document.createElementNS(SVG, "rect");
  const end = ev.end_ts === null ? t1 : ev.end_ts;
  span.setAttribute("class", "span");
  span.setAttribute("x", x(Math.max(ev.start_ts, t0)).toFixed(1));
  span.setAttribute("width", Math.max(1, x(Math.min(end, t1)) - x(Math.max(ev.start_ts, t0))).toFixed(1));
  span.setAttribute("y", "0");
  span.setAttribute("height", "60");
  svg.append(span);
  const line = document.createElementNS(SVG, "polyline");
  line.setAttribute("points", points.t.map((t, i) => `${x(t).toFixed(1)},${(58 - points.score[i] * 56).toFixed(1)}`).join(" "));
  svg.append(line);
  return svg;
}

function verdictBadge(fb) {
  if (!fb) return null;
  return el("span", { cls: `verdict ${fb.verdict}`, text: fb.verdict.replace("_", " ") });
}

function eventItem(ev) {
  const why = (ev.explanation && ev.explanation.text) || ev.text || "";
  const graph = el("div", { cls: "curve" });
  const item = el("li", { cls: "event", "data-event": ev.id },
    ev.snapshot_url ? el("img", { src: ev.snapshot_url, alt: `snapshot of ${ev.label}`, loading: "lazy" }) : el("div"),
    el("div", {},
      el("div", {}, el("span", { cls: "label", text: ev.label }), verdictBadge(ev.feedback)),
      el("div", { cls: "meta", text: `${ev.camera} · ${clock(ev.start_ts)} · ${(ev.duration_s || 0).toFixed(1)} s · peak ${(ev.peak_score || 0).toFixed(2)} · ${ev.state}` }),
      el("div", { cls: "why", text: why })),
    graph);
  item.addEventListener("click", () => { location.hash = `#/events/${encodeURIComponent(ev.id)}`; });
  api(ev.scores_url).then((pts) => graph.append(curve(pts, ev))).catch(() => {});
  return item;
}

async function loadEvents(reset) {
  if (reset) {
    state.cursor = null;
    $("events").replaceChildren();
  }
  const q = new URLSearchParams({ limit: "25" });
  for (const [k, v] of Object.entries(state.filters)) if (v) q.set(k, v);
  if (state.cursor) q.set("cursor", state.cursor);
  const page = await api(`/api/events?${q}`);
  for (const ev of page.events) $("events").append(eventItem(ev));
  state.cursor = page.next_cursor;
  $("more").hidden = !state.cursor;
  $("events").dataset.loaded = String($("events").children.length);
}

// --- one event ---------------------------------------------------------------------------

async function openEvent(id) {
  const ev = await api(`/api/events/${encodeURIComponent(id)}`);
  state.current = ev;
  $("d-title").textContent = `${ev.label} on ${ev.camera}, ${clock(ev.start_ts)}`;
  $("d-text").textContent = ev.text || "";
  $("d-why").textContent = (ev.explanation && ev.explanation.text) || "";
  $("d-note").value = ev.feedback ? ev.feedback.note : "";
  $("d-state").textContent = ev.feedback ? `marked ${ev.feedback.verdict.replace("_", " ")}` : "";
  const video = $("d-clip");
  video.hidden = !ev.clip_url;
  if (ev.clip_url) {
    video.src = ev.clip_url;
    video.play().catch(() => {});  // autoplay may be refused; the controls remain
  } else {
    video.removeAttribute("src");
  }
  const pts = await api(ev.scores_url);
  $("d-curve").replaceChildren(curve(pts, ev));
  if (!$("detail").open) $("detail").showModal();
}

async function sendFeedback(verdict) {
  const ev = state.current;
  if (!ev) return;
  const body = JSON.stringify({ verdict, note: $("d-note").value });
  const fb = await api(`/api/events/${encodeURIComponent(ev.id)}/feedback`, {
    method: "POST", headers: { "Content-Type": "application/json" }, body,
  });
  ev.feedback = fb;
  $("d-state").textContent = `marked ${verdict.replace("_", " ")}`;
  const row = $("events").querySelector(`[data-event="${CSS.escape(ev.id)}"]`);
  if (row) {
    const head = row.querySelector(".label").parentElement;
    head.querySelector(".verdict")?.remove();
    head.append(verdictBadge(fb));
  }
}

function route() {
  const m = location.hash.match(/^#\/events\/(.+)$/);
  if (m) openEvent(decodeURIComponent(m[1])).catch((err) => { $("d-state").textContent = err.message; });
}

// --- start -------------------------------------------------------------------------------

async function start() {
  const session = await (await fetch("/api/session", { credentials: "same-origin" })).json();
  if (!session.authenticated) {
    showLogin();
    return;
  }
  const health = await api("/api/health");
  $("instance").textContent = health.instance;
  $("login").hidden = true;
  $("main").hidden = false;
  $("logout").hidden = !session.auth;
  await refreshCameras();
  await loadEvents(true);
  if (!state.timer) state.timer = setInterval(refreshCameras, 2000);
  route();
}

document.addEventListener("DOMContentLoaded", () => {
  $("login").addEventListener("submit", login);
  $("logout").addEventListener("click", logout);
  $("more").addEventListener("click", () => loadEvents(false));
  $("filters").addEventListener("submit", (ev) => {
    ev.preventDefault();
    state.filters = { camera: $("f-camera").value, label: $("f-label").value.trim() };
    loadEvents(true);
  });
  for (const id of ["d-confirm", "d-false"]) {
    $(id).addEventListener("click", (ev) => sendFeedback(ev.target.dataset.verdict));
  }
  $("detail").addEventListener("close", () => {
    $("d-clip").pause();
    if (location.hash) history.replaceState(null, "", location.pathname);
  });
  window.addEventListener("hashchange", route);
  start().catch(() => {});
});
