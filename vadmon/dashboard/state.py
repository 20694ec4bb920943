"""What the dashboard and the Prometheus exporter know: one aggregate of heartbeats,
supervisor child status and outbox counts.

Both views read the same ``StateView`` snapshot so the terminal and /metrics never disagree.
Updates and snapshots take a lock because the rich refresh thread and the HTTP exporter read
while the supervisor loop writes.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from vadmon.capture.watchdog import CameraState
from vadmon.dashboard.event_view import (
    EventView,
    event_from_heartbeat,
    event_from_row,
    event_order,
)
from vadmon.runtime.heartbeat import Heartbeat
from vadmon.runtime.link_verdict import CaptureLink
from vadmon.runtime.status_schema import (
    ALERT_LATENCY_BUCKETS,
    CAPTURE_PREFIX,
    INFERENCE_LATENCY_BUCKETS,
    INFERENCE_PROCESS,
    MAX_CAMERAS,
    AlertStatus,
    CaptureStatus,
    HistogramBody,
    InferenceCamera,
    InferenceStatus,
)

MAX_EVENTS = 50
DOWN_STATES = ("backoff", "parked", "failed", "exited", "stopped", "stopping")
QUEUE_KEYS = ("pending", "delivered", "retrying", "dead", "events_total", "suppressed_cooldown")


@dataclass(frozen=True)
class HistogramView:
    buckets: tuple[float, ...]
    cumulative: tuple[int, ...]  # counts ≤ each bucket bound, then the +Inf count
    total: float
    count: int


def histogram_view(body: HistogramBody | None, default: tuple[float, ...]) -> HistogramView:
    """A child's cumulative histogram as the exporter wants it (empty until one arrives)."""
    if body is None:
        return HistogramView(default, (0,) * (len(default) + 1), 0.0, 0)
    running, cumulative = 0, []
    for c in body.counts:
        running += c
        cumulative.append(running)
    return HistogramView(tuple(body.le), tuple(cumulative), body.sum, running)


@dataclass(frozen=True)
class CameraView:
    name: str
    state: CameraState  # the watchdog's states, also derived here (silent → offline)
    capture_fps: float | None = None
    frames_total: float | None = None
    snippet_drops_total: float | None = None
    reconnects_total: float | None = None
    stalls_total: float | None = None
    snippets_total: float | None = None
    source: str | None = None
    resolution: str | None = None
    error: str | None = None  # the capture process's last source error
    retry_in_s: float | None = None
    score: float | None = None
    label: str | None = None
    label_prob: float | None = None
    inference_fps: float | None = None
    skipped_total: float | None = None
    encoder_drops_total: float | None = None  # of skipped_total: remote image tower down or late
    gate_reused_total: float | None = None  # change_gate: scored with the previous embedding
    scored_total: float | None = None
    latency_ms: float | None = None
    inference_stale: bool = False
    history: tuple[float, ...] = ()
    reason: str = ""  # why it is not online, in words ("" while online)
    link_refused: tuple[tuple[str, float], ...] = ()  # split host: (reason, count) refused
    flood_suppressed_total: float | None = None  # events the flood guard did not send
    link: CaptureLink | None = None  # capture host: the inference host's verdict (issue 20)


@dataclass(frozen=True)
class ProcessView:
    name: str
    state: str
    restarts: int = 0
    pid: int | None = None
    last_exit: str = ""


@dataclass(frozen=True)
class QueueView:
    pending: float | None = None
    delivered: float | None = None
    retrying: float | None = None
    dead: float | None = None
    events_total: float | None = None
    webhooks: int | None = None  # endpoints configured (0 = none)
    suppressed_cooldown: float | None = None  # events not raised: same label within cooldown_s


@dataclass(frozen=True)
class InferenceView:
    device: str | None = None
    precision: str | None = None
    mode: str | None = None
    stale: bool = True
    encoder: str | None = None  # the image tower's state, e.g. "triton unreachable (…)"
    loading_s: float | None = None  # the model is loading (seconds so far)


@dataclass(frozen=True)
class StateView:
    now: float
    banner: str | None
    cameras: tuple[CameraView, ...]
    events: tuple[EventView, ...]  # newest first
    queue: QueueView
    processes: tuple[ProcessView, ...]  # problems first
    inference: InferenceView
    inference_latency: HistogramView
    alert_latency: HistogramView
    log_dir: str | None = None


@dataclass
class _Camera:
    view: CameraView
    capture_seen: float | None = None
    scored_at: float | None = None  # unix time of the latest score (inference's last_ts)


class DashboardState:
    """Aggregates validated heartbeats, supervisor status and outbox counts.

    ``cameras`` given: only those cameras are shown (other names are ignored); otherwise new
    names are taken up to ``MAX_CAMERAS``, so no sender can grow this state without bound."""

    def __init__(
        self,
        cameras: Iterable[str] = (),
        banner: str | None = None,
        stale_after_s: float = 10.0,
        *,
        webhooks: int | None = None,
        log_dir: str | None = None,
    ) -> None:
        self.banner = banner
        self.log_dir = log_dir
        self.stale_after_s = stale_after_s
        self._lock = threading.RLock()
        self._cameras: dict[str, _Camera] = {}
        for name in cameras:
            self._cameras[name] = _Camera(CameraView(name=name, state=CameraState.CONNECTING))
        self._fixed = bool(self._cameras)
        self._events: dict[str, EventView] = {}
        self._queue = QueueView(webhooks=webhooks)
        self._children: dict[str, ProcessView] = {}
        self._seen: dict[str, float] = {}  # process → receive time of its last heartbeat
        self._inference = InferenceView()
        self._inference_latency: HistogramBody | None = None
        self._alert_latency: HistogramBody | None = None

    # --- writers ---------------------------------------------------------------------------

    def update_heartbeat(self, hb: Heartbeat, now: float | None = None) -> None:
        """Take one validated heartbeat; bodies that failed validation only prove liveness."""
        now = time.time() if now is None else now
        body = hb.body
        with self._lock:
            if isinstance(body, CaptureStatus):
                name = body.camera or hb.process.removeprefix(CAPTURE_PREFIX)
                cam = self._camera(name)
                if cam is None:
                    return
                self._capture_beat(cam, body, now)
            elif isinstance(body, InferenceStatus):
                self._inference_beat(body)
            elif isinstance(body, AlertStatus):
                self._alerts_beat(body)
            elif hb.process not in self._children and len(self._seen) >= 4 * MAX_CAMERAS:
                return
            self._seen[hb.process] = now

    def update_children(self, status: Mapping[str, Any]) -> None:
        """Take ``Supervisor.status()`` (``ChildStatus`` objects)."""
        with self._lock:
            self._children = {
                str(name): ProcessView(
                    name=str(name),
                    state=st.state,
                    restarts=st.restarts,
                    pid=st.pid,
                    last_exit=st.last_exit,
                )
                for name, st in status.items()
            }

    def update_outbox(
        self, counts: Mapping[str, Any], recent_events: Iterable[Mapping[str, Any]] = ()
    ) -> None:
        """Take ``Outbox.counts()`` and ``Outbox.list_events()`` rows (read-only outbox)."""
        with self._lock:
            known = {k: float(v) for k, v in counts.items() if k in QUEUE_KEYS}
            self._queue = replace(self._queue, **known)
            for row in recent_events:
                self._add_event(event_from_row(dict(row)))

    # --- heartbeat kinds -------------------------------------------------------------------

    def _camera(self, name: str) -> _Camera | None:
        cam = self._cameras.get(name)
        if cam is None and not self._fixed and len(self._cameras) < MAX_CAMERAS:
            cam = self._cameras[name] = _Camera(CameraView(name=name, state=CameraState.CONNECTING))
        return cam

    def _capture_beat(self, cam: _Camera, body: CaptureStatus, now: float) -> None:
        c, info = body.counters, body.info
        cam.capture_seen = now
        cam.view = replace(
            cam.view,
            state=body.state or cam.view.state,
            capture_fps=c.fps,
            frames_total=c.frames_total,
            snippet_drops_total=c.snippet_drops_total,
            reconnects_total=c.reconnects_total,
            stalls_total=c.stalls_total,
            snippets_total=c.snippets_total,
            source=info.source,
            resolution=info.resolution,
            error=info.error,
            retry_in_s=info.retry_in_s,
            link=info.link,
        )

    def _inference_beat(self, body: InferenceStatus) -> None:
        info = body.info
        self._inference = InferenceView(
            info.device,
            info.precision,
            info.mode,
            stale=False,
            encoder=info.encoder,
            loading_s=info.loading_s,
        )
        self._inference_latency = info.latency or self._inference_latency
        for name, cam_body in info.cameras.items():
            cam = self._camera(name)
            if cam is not None:
                self._inference_camera(cam, cam_body)

    def _inference_camera(self, cam: _Camera, d: InferenceCamera) -> None:
        cam.scored_at = d.last_ts or cam.scored_at
        cam.view = replace(
            cam.view,
            score=d.score,
            label=d.label,
            label_prob=d.label_prob,
            inference_fps=d.fps,
            skipped_total=d.skipped_total,
            encoder_drops_total=d.drops.get("encoder"),
            gate_reused_total=d.gate_reused,
            scored_total=d.snippets_total,
            latency_ms=d.latency_ms,
            history=tuple(d.recent_scores),
            link_refused=tuple(sorted(d.refused.items())),
        )

    def _alerts_beat(self, body: AlertStatus) -> None:
        c = body.counters  # the typed queue fields; a stage's extra counters are not shown here
        counts = {k: getattr(c, k) for k in QUEUE_KEYS if getattr(c, k) is not None}
        webhooks = body.info.webhooks if body.info.webhooks is not None else self._queue.webhooks
        self._queue = replace(self._queue, **counts, webhooks=webhooks)
        for ev in body.info.recent_events:
            self._add_event(event_from_heartbeat(ev))
        for name, n in body.info.flood_suppressed.items():
            cam = self._camera(name)
            if cam is not None:
                cam.view = replace(cam.view, flood_suppressed_total=n)
        self._alert_latency = body.info.alert_latency or self._alert_latency

    def _add_event(self, ev: EventView | None) -> None:
        if ev is None:
            return
        self._events[ev.id] = ev
        if len(self._events) > MAX_EVENTS:
            keep = sorted(self._events.values(), key=event_order, reverse=True)[:MAX_EVENTS]
            self._events = {e.id: e for e in keep}

    # --- reader ----------------------------------------------------------------------------

    def view(self, now: float | None = None) -> StateView:
        """An immutable snapshot; derived states (stale → offline, reasons) are computed here."""
        now = time.time() if now is None else now
        with self._lock:
            inference_seen = self._seen.get(INFERENCE_PROCESS)
            inf_stale = inference_seen is None or now - inference_seen > self.stale_after_s
            cameras = tuple(self._camera_view(c, now, inf_stale) for c in self._cameras.values())
            events = tuple(sorted(self._events.values(), key=event_order, reverse=True))
            return StateView(
                now=now,
                banner=self.banner,
                cameras=cameras,
                events=events,
                queue=self._queue,
                processes=self._process_views(now),
                inference=replace(self._inference, stale=inf_stale),
                inference_latency=histogram_view(
                    self._inference_latency, INFERENCE_LATENCY_BUCKETS
                ),
                alert_latency=histogram_view(self._alert_latency, ALERT_LATENCY_BUCKETS),
                log_dir=self.log_dir,
            )

    def _camera_view(self, cam: _Camera, now: float, inference_stale: bool) -> CameraView:
        view = cam.view
        child = self._children.get(f"{CAPTURE_PREFIX}{view.name}")
        silent = cam.capture_seen is not None and now - cam.capture_seen > self.stale_after_s
        state, reason = view.state, _reason(view)
        if child is not None and child.state in DOWN_STATES:
            state = CameraState.OFFLINE
            reason = f"process {child.state}" + (f": {child.last_exit}" if child.last_exit else "")
        elif child is None and cam.capture_seen is None and self._children:
            state, reason = self._remote(cam, now)
        elif silent:
            state, reason = CameraState.OFFLINE, f"no heartbeat for {now - cam.capture_seen:.0f} s"
        return replace(view, state=state, reason=reason, inference_stale=inference_stale)

    def _remote(self, cam: _Camera, now: float) -> tuple[CameraState, str]:
        """A camera captured on another host (split mode): no capture child or heartbeat here,
        so its state is the link's: online while its snippets keep being scored."""
        if cam.scored_at is None:
            return CameraState.CONNECTING, "link: waiting for the capture host"
        age = now - cam.scored_at
        if age <= self.stale_after_s:
            return CameraState.ONLINE, ""
        return CameraState.OFFLINE, f"link: no snippets for {age:.0f} s"

    def _process_views(self, now: float) -> tuple[ProcessView, ...]:
        procs = dict(self._children)
        for name, seen in self._seen.items():
            if name not in procs:
                alive = now - seen <= self.stale_after_s
                procs[name] = ProcessView(name=name, state="alive" if alive else "silent")
        ok = ("running", "alive")
        return tuple(sorted(procs.values(), key=lambda p: (p.state in ok, p.name)))


def _reason(view: CameraView) -> str:
    """Why a camera is not online, e.g. "refused, retry in 4 s: cannot open rtsp://***@…": the
    kind and the retry first, so a narrow column still shows them."""
    if view.state == CameraState.ONLINE:
        return ""
    kind, _, detail = (view.error or "").partition(": ")
    head = ", ".join(x for x in (kind, _retry(view.retry_in_s)) if x)
    return f"{head}: {detail}" if detail else head


def _retry(seconds: float | None) -> str:
    return f"retry in {seconds:.0f} s" if seconds else ""
