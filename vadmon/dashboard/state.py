"""What the dashboard and the Prometheus exporter know: one aggregate of heartbeats,
supervisor child status and outbox counts.

Both views read the same ``StateView`` snapshot so the terminal and /metrics never disagree.
Updates and snapshots take a lock because the rich refresh thread and the HTTP exporter read
while the supervisor loop writes.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field, is_dataclass, replace
from typing import Any

from vadmon.runtime.heartbeat import Heartbeat
from vadmon.runtime.status_schema import (
    ALERTS_PROCESS,
    CAPTURE_PREFIX,
    INFERENCE_PROCESS,
    as_dict,
    as_list,
    as_num,
    as_str,
    camera_of,
)

HISTORY_LEN = 60
MAX_EVENTS = 50
INFERENCE_LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
ALERT_LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
DOWN_STATES = ("backoff", "failed", "exited", "stopped", "stopping")
QUEUE_KEYS = ("pending", "delivered", "retrying", "dead", "events_total", "suppressed_cooldown")


@dataclass(frozen=True)
class HistogramView:
    buckets: tuple[float, ...]
    cumulative: tuple[int, ...]  # counts ≤ each bucket bound, then the +Inf count
    total: float
    count: int


class Histogram:
    """A fixed-bucket histogram we own, so that the exporter reports what the state saw."""

    def __init__(self, buckets: tuple[float, ...]) -> None:
        self.buckets = buckets
        self._counts = [0] * (len(buckets) + 1)
        self.total = 0.0
        self.count = 0

    def observe(self, value: float) -> None:
        index = next((i for i, b in enumerate(self.buckets) if value <= b), len(self.buckets))
        self._counts[index] += 1
        self.total += value
        self.count += 1

    def view(self) -> HistogramView:
        running, cumulative = 0, []
        for c in self._counts:
            running += c
            cumulative.append(running)
        return HistogramView(self.buckets, tuple(cumulative), self.total, self.count)


@dataclass(frozen=True)
class CameraView:
    name: str
    state: str  # connecting|online|stalled|offline (or what the capture process reported)
    capture_fps: float | None = None
    frames_total: float | None = None
    drops_total: float | None = None
    reconnects_total: float | None = None
    stalls_total: float | None = None
    snippets_total: float | None = None
    source: str | None = None
    resolution: str | None = None
    score: float | None = None
    label: str | None = None
    label_prob: float | None = None
    inference_fps: float | None = None
    skipped_total: float | None = None
    latency_ms: float | None = None
    inference_stale: bool = False
    history: tuple[float, ...] = ()


@dataclass(frozen=True)
class EventView:
    id: str
    camera: str
    label: str
    prob: float | None
    start: float | None
    duration: float | None
    kind: str


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
    suppressed_cooldown: float | None = None  # events not raised: same label within cooldown_s


@dataclass(frozen=True)
class InferenceView:
    device: str | None = None
    precision: str | None = None
    mode: str | None = None
    stale: bool = True


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


@dataclass
class _Camera:
    view: CameraView
    capture_seen: float | None = None
    capture_ts: float | None = None
    last_score_ts: float | None = None
    history: deque = field(default_factory=lambda: deque(maxlen=HISTORY_LEN))


class DashboardState:
    """Aggregates heartbeats (``update_heartbeat``), supervisor status and outbox counts."""

    def __init__(
        self, cameras: Iterable[str] = (), banner: str | None = None, stale_after_s: float = 10.0
    ) -> None:
        self.banner = banner
        self.stale_after_s = stale_after_s
        self._lock = threading.RLock()
        self._cameras: dict[str, _Camera] = {}
        for name in cameras:
            self._camera(name)
        self._events: dict[str, EventView] = {}
        self._queue = QueueView()
        self._children: dict[str, ProcessView] = {}
        self._seen: dict[str, float] = {}  # process → receive time of its last heartbeat
        self._inference = InferenceView()
        self._inference_latency = Histogram(INFERENCE_LATENCY_BUCKETS)
        self._alert_latency = Histogram(ALERT_LATENCY_BUCKETS)

    # --- writers ---------------------------------------------------------------------------

    def update_heartbeat(self, hb: Heartbeat | Mapping[str, Any], now: float | None = None) -> None:
        """Take one heartbeat (a parsed ``Heartbeat`` or its JSON dict); unknown parts ignored."""
        fields = dict(hb.fields) if isinstance(hb, Heartbeat) else dict(hb)
        process = as_str(fields.get("process"))
        if not process:
            return
        now = time.time() if now is None else now
        with self._lock:
            self._seen[process] = now
            if process == INFERENCE_PROCESS:
                self._inference_beat(fields)
            elif process == ALERTS_PROCESS:
                self._alerts_beat(fields)
            elif (cam := camera_of(process, fields)) is not None:
                self._capture_beat(cam, fields, now)

    def update_children(self, status: Mapping[str, Any]) -> None:
        """Take ``Supervisor.status()`` (``ChildStatus`` objects or plain dicts)."""
        with self._lock:
            self._children = {}
            for name, st in status.items():
                d = asdict(st) if is_dataclass(st) else as_dict(st)
                restarts = as_num(d.get("restarts"))
                pid = d.get("pid") if isinstance(d.get("pid"), int) else None
                self._children[str(name)] = ProcessView(
                    name=str(name),
                    state=as_str(d.get("state"), 20) or "?",
                    restarts=int(restarts or 0),
                    pid=pid,
                    last_exit=as_str(d.get("last_exit")) or "",
                )

    def update_outbox(
        self, counts: Mapping[str, Any], recent_events: Iterable[Mapping[str, Any]] = ()
    ) -> None:
        """Take ``Outbox.counts()`` and ``Outbox.list_events()`` rows (read-only outbox)."""
        with self._lock:
            self._set_queue(dict(counts))
            for row in recent_events:
                self._add_event(_event_from_row(dict(row)))

    # --- heartbeat kinds -------------------------------------------------------------------

    def _camera(self, name: str) -> _Camera:
        cam = self._cameras.get(name)
        if cam is None:
            cam = self._cameras[name] = _Camera(CameraView(name=name, state="connecting"))
        return cam

    def _capture_beat(self, name: str, fields: dict[str, Any], now: float) -> None:
        cam = self._camera(name)
        counters, info = as_dict(fields.get("counters")), as_dict(fields.get("info"))
        cam.capture_seen = now
        cam.capture_ts = as_num(fields.get("ts"))
        state = as_str(fields.get("state"), 12) or cam.view.state
        cam.view = replace(
            cam.view,
            state=state,
            capture_fps=as_num(counters.get("fps")),
            frames_total=as_num(counters.get("frames_total")),
            drops_total=as_num(counters.get("drops_total")),
            reconnects_total=as_num(counters.get("reconnects_total")),
            stalls_total=as_num(counters.get("stalls_total")),
            snippets_total=as_num(counters.get("snippets_total")),
            source=as_str(info.get("source")),
            resolution=as_str(info.get("resolution"), 20),
        )

    def _inference_beat(self, fields: dict[str, Any]) -> None:
        info = as_dict(fields.get("info"))
        self._inference = InferenceView(
            device=as_str(info.get("device"), 20),
            precision=as_str(info.get("precision"), 12),
            mode=as_str(info.get("mode"), 12),
            stale=False,
        )
        for name, raw in as_dict(info.get("cameras")).items():
            self._inference_camera(self._camera(str(name)[:64]), as_dict(raw))

    def _inference_camera(self, cam: _Camera, d: dict[str, Any]) -> None:
        score, last_ts = as_num(d.get("score")), as_num(d.get("last_ts"))
        latency = as_num(d.get("latency_ms"))
        fresh = last_ts is None or last_ts != cam.last_score_ts
        if fresh and score is not None:
            cam.history.append(min(max(score, 0.0), 1.0))
        if fresh and latency is not None and latency >= 0:
            self._inference_latency.observe(latency / 1000.0)
        cam.last_score_ts = last_ts
        cam.view = replace(
            cam.view,
            score=score,
            label=as_str(d.get("label"), 40),
            label_prob=as_num(d.get("label_prob")),
            inference_fps=as_num(d.get("fps")),
            skipped_total=as_num(d.get("skipped_total")),
            latency_ms=latency,
        )

    def _alerts_beat(self, fields: dict[str, Any]) -> None:
        counters, info = as_dict(fields.get("counters")), as_dict(fields.get("info"))
        self._set_queue(counters)
        for ev in as_list(info.get("recent_events")):
            if isinstance(ev, dict):
                self._add_event(_event_from_heartbeat(ev))
        for ms in as_list(info.get("alert_latency_ms")):
            value = as_num(ms)
            if value is not None and value >= 0:
                self._alert_latency.observe(value / 1000.0)

    def _set_queue(self, counts: dict[str, Any]) -> None:
        """Known keys win; the alert process's older ``outbox_*`` names are accepted too."""
        updates: dict[str, float] = {}
        for key in QUEUE_KEYS:
            value = as_num(counts.get(key))
            if value is None:
                value = as_num(counts.get(f"outbox_{key}"))
            if value is not None:
                updates[key] = value
        self._queue = replace(self._queue, **updates)

    def _add_event(self, ev: EventView | None) -> None:
        if ev is None:
            return
        self._events[ev.id] = ev
        if len(self._events) > MAX_EVENTS:
            keep = sorted(self._events.values(), key=_event_order, reverse=True)[:MAX_EVENTS]
            self._events = {e.id: e for e in keep}

    # --- reader ----------------------------------------------------------------------------

    def view(self, now: float | None = None) -> StateView:
        """An immutable snapshot; derived states (stale → offline) are computed here."""
        now = time.time() if now is None else now
        with self._lock:
            inference_seen = self._seen.get(INFERENCE_PROCESS)
            inf_stale = inference_seen is None or now - inference_seen > self.stale_after_s
            cameras = tuple(self._camera_view(c, now, inf_stale) for c in self._cameras.values())
            events = tuple(sorted(self._events.values(), key=_event_order, reverse=True))
            return StateView(
                now=now,
                banner=self.banner,
                cameras=cameras,
                events=events,
                queue=self._queue,
                processes=self._process_views(now),
                inference=replace(self._inference, stale=inf_stale),
                inference_latency=self._inference_latency.view(),
                alert_latency=self._alert_latency.view(),
            )

    def _camera_view(self, cam: _Camera, now: float, inference_stale: bool) -> CameraView:
        child = self._children.get(f"{CAPTURE_PREFIX}{cam.view.name}")
        process_down = child is not None and child.state in DOWN_STATES
        silent = cam.capture_seen is not None and now - cam.capture_seen > self.stale_after_s
        state = "offline" if process_down or silent else cam.view.state or "?"
        return replace(
            cam.view, state=state, inference_stale=inference_stale, history=tuple(cam.history)
        )

    def _process_views(self, now: float) -> tuple[ProcessView, ...]:
        procs = dict(self._children)
        for name, seen in self._seen.items():
            if name not in procs:
                alive = now - seen <= self.stale_after_s
                procs[name] = ProcessView(name=name, state="alive" if alive else "silent")
        ok = ("running", "alive")
        return tuple(sorted(procs.values(), key=lambda p: (p.state in ok, p.name)))


def _event_order(ev: EventView) -> tuple[float, str]:
    return (ev.start or 0.0, ev.id)


def _event_from_heartbeat(d: dict[str, Any]) -> EventView | None:
    camera, label = as_str(d.get("camera"), 64), as_str(d.get("label"), 64)
    if not camera or not label:
        return None
    start = as_num(d.get("start"))
    return EventView(
        id=as_str(d.get("id"), 64) or f"{camera}/{label}/{start}",
        camera=camera,
        label=label,
        prob=as_num(d.get("prob")),
        start=start,
        duration=as_num(d.get("duration")),
        kind=as_str(d.get("kind"), 12) or "?",
    )


_ROW_KIND = {"open": "open", "ending": "end", "closed": "end", "interrupted": "interrupted"}


def _event_from_row(d: dict[str, Any]) -> EventView | None:
    """An outbox ``events`` row: ``label_prob``, ``start_ts``/``end_ts`` and a row state."""
    start, end = as_num(d.get("start_ts")), as_num(d.get("end_ts"))
    duration = end - start if start is not None and end is not None else None
    state = as_str(d.get("state"), 12) or "?"
    return _event_from_heartbeat(
        {
            "id": d.get("id"),
            "camera": d.get("camera"),
            "label": d.get("label"),
            "prob": d.get("label_prob"),
            "start": start,
            "duration": duration,
            "kind": _ROW_KIND.get(state, state),
        }
    )
