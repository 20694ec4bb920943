"""Heartbeat bodies of the capture, inference and alert processes: the one contract, validated once.

Every child sends ``[b"status", JSON]`` heartbeats (see ``vadmon.runtime.heartbeat``) about once a
second. Besides the envelope (``process``/``ts``/``pid``) the JSON carries one of the bodies below,
chosen by the process name. ``vadmon.runtime.heartbeat.parse_heartbeat`` validates the body here,
once, for the dashboard, the Prometheus exporter and the service-mode log alike; readers then use
typed attributes and never meet a string where a number belongs. A body that does not validate
is dropped as a whole (and counted): half-trusted data would only move the error elsewhere.

Totals and histograms are cumulative since the child started, so a lost heartbeat loses
nothing: the next one carries every snippet and every delivery (a child restart resets them,
which Prometheus already reads as a counter reset). Lists are bounded so a heartbeat stays far
below ``heartbeat.MAX_BYTES``.

Process names::

    capture:<camera>   one per camera (CAPTURE_PREFIX + camera name)
    inference          the batched CLIP/VadCLIP process
    alerts             events, clips and webhook delivery

Example capture body::

    {"camera": "door", "state": "online",
     "counters": {"frames_total": 12000, "fps": 9.8, "snippet_drops_total": 3,
                  "reconnects_total": 1, "stalls_total": 0, "snippets_total": 750},
     "info": {"source": "rtsp://***@10.0.0.5/stream1", "resolution": "768x576",
              "error": "auth: 401 Unauthorized", "retry_in_s": 4.0}}

Example inference body::

    {"info": {"device": "cuda:0", "precision": "bf16", "mode": "vadclip",
              "cameras": {"door": {"score": 0.12, "label": "normal", "label_prob": 0.91,
                                   "fps": 0.6, "skipped_total": 4, "snippets_total": 394,
                                   "latency_ms": 35.2, "last_ts": 1718000000.1,
                                   "recent_scores": [0.1, 0.12]}},
              "latency": {"le": [0.01, ...], "counts": [0, 12, ...], "sum": 13.8}}}

Example alerts body::

    {"counters": {"pending": 1, "delivered": 20, "retrying": 1, "dead": 0, "events_total": 7,
                  "suppressed_cooldown": 2},
     "info": {"webhooks": 1,
              "recent_events": [{"id": "1718000000.000000-a1b2c3", "camera": "door",
                                 "label": "Fighting", "prob": 0.81, "start": 1718000000.0,
                                 "duration": 4.5, "kind": "update"}],
              "alert_latency": {"le": [0.05, ...], "counts": [3, 17, ...], "sum": 4.1}}}
"""

from __future__ import annotations

import contextlib
import math
import threading
import time
from collections import deque
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    model_validator,
)

from vadmon.capture.watchdog import CameraState
from vadmon.runtime.link_verdict import CaptureLink

CAPTURE_PREFIX = "capture:"
INFERENCE_PROCESS = "inference"
ALERTS_PROCESS = "alerts"

MAX_EXTRA_COUNTERS = 128  # a stage's own diagnostics beside the typed fields
MAX_RECENT_EVENTS = 10
MAX_RECENT_SCORES = 120  # the widest sparkline (a 160-column terminal) needs about 90
MAX_CAMERAS = 256
MAX_BUCKETS = 32
# score ready → published, and webhook queued → delivered (2xx)
INFERENCE_LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
ALERT_LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)

Num = Annotated[float, Field(allow_inf_nan=False)]
Total = Annotated[float, Field(ge=0, allow_inf_nan=False)]
Name = Annotated[str, StringConstraints(min_length=1, max_length=64)]
Text = Annotated[str, StringConstraints(max_length=200)]
Short = Annotated[str, StringConstraints(max_length=64)]
Score = Annotated[float, Field(ge=0, le=1, allow_inf_nan=False)]


class _Body(BaseModel):
    """Strict types (no "3" for 3), unknown keys ignored (a newer child may send more)."""

    model_config = ConfigDict(strict=True, extra="ignore", frozen=True)


class HistogramBody(_Body):
    """A cumulative fixed-bucket histogram: ``counts[i]`` values ≤ ``le[i]``, the last +Inf."""

    le: list[Num] = Field(max_length=MAX_BUCKETS)
    counts: list[Annotated[int, Field(ge=0)]] = Field(max_length=MAX_BUCKETS + 1)
    sum: Total = 0.0

    @model_validator(mode="after")
    def _shape(self) -> HistogramBody:
        if len(self.counts) != len(self.le) + 1 or self.le != sorted(set(self.le)):
            raise ValueError("counts must have one entry per bound plus +Inf, bounds ascending")
        return self

    @property
    def count(self) -> int:
        return sum(self.counts)


class _OpenCounters(_Body):
    """Typed counters plus up to ``MAX_EXTRA_COUNTERS`` more, each a finite number ≥ 0: a
    stage's own diagnostics (e.g. ``clip_errors``) ride along under their own names without
    a schema change, and still cannot carry a string or grow a beat without bound."""

    model_config = ConfigDict(strict=True, extra="allow", frozen=True)

    @model_validator(mode="after")
    def _extras_are_counts(self) -> _OpenCounters:
        extra = self.model_extra or {}
        if len(extra) > MAX_EXTRA_COUNTERS:
            raise ValueError(f"at most {MAX_EXTRA_COUNTERS} extra counters")
        for key, value in extra.items():
            if len(key) > 64 or isinstance(value, bool) or not isinstance(value, int | float):
                raise ValueError(f"extra counter {key[:64]!r} must be a number")
            if not math.isfinite(value) or value < 0:
                raise ValueError(f"extra counter {key[:64]!r} must be finite and ≥ 0")
        return self

    def get(self, name: str, default: float = 0.0) -> float:
        """A counter by name, typed field or extra (``default`` when absent or None)."""
        value = getattr(self, name, None)
        return default if value is None else value


class CaptureCounters(_Body):
    frames_total: Total | None = None  # frames read since the process started
    fps: Total | None = None  # frames per second over the last few seconds (None at first)
    snippet_drops_total: Total | None = None  # snippets dropped: inference was not taking them
    reconnects_total: Total | None = None
    stalls_total: Total | None = None
    snippets_total: Total | None = None  # 16-frame snippets handed to inference
    snippets_sent: Total | None = None  # of those, the ones the socket took
    source_fps: Total | None = None  # what the source says it delivers
    source_skipped: Total | None = None  # frames the reader thread replaced before use
    previews: Total | None = None  # preview JPEGs published
    stalls_per_hour: Total | None = None
    frozen: Total | None = None  # frozen-image detections
    resolution_changes: Total | None = None
    ring_recreated: Total | None = None
    link_previews_sent: Total | None = None  # split host only (capture/preview_link.py)
    link_previews_dropped: Total | None = None
    link_preview_bytes: Total | None = None
    link_snippet_bytes: Total | None = None
    held: Total | None = None  # snippets held now while inference loads its model (capture/hold)
    held_sent: Total | None = None  # held snippets sent once inference was ready
    model_loading_drops: Total | None = None  # held snippets dropped (hold full or unpackable)


class CaptureInfo(_Body):
    source: Text | None = None  # ALREADY REDACTED (vadmon.redact) — never credentials
    resolution: Annotated[str, StringConstraints(max_length=20)] | None = None
    error: Text | None = None  # the last source error, e.g. "auth: 401 Unauthorized"
    retry_in_s: Total | None = None  # seconds until the next connection attempt
    last_error: Short | None = None  # the watchdog's last failure kind ("stall", "ended", …)
    errors: dict[Short, Total] = Field(default_factory=dict, max_length=16)  # per kind
    ring: Short | None = None  # the shared-memory ring's name
    height: Annotated[int, Field(ge=0)] | None = None
    width: Annotated[int, Field(ge=0)] | None = None
    link: CaptureLink | None = None  # split host: the inference host's verdict on our messages


class CaptureStatus(_Body):
    """Process ``capture:<camera>``."""

    camera: Name | None = None
    state: Annotated[CameraState, Field(strict=False)] | None = None  # JSON sends the value
    counters: CaptureCounters = CaptureCounters()
    info: CaptureInfo = CaptureInfo()


class InferenceCamera(_Body):
    score: Score | None = None  # latest C-Branch anomaly score
    label: Short | None = None  # the top class, may be the normal one
    label_prob: Score | None = None
    fps: Total | None = None  # snippets scored per second
    skipped_total: Total | None = None  # snippets not scored since start (sum of ``drops``)
    drops: dict[Short, Total] = Field(default_factory=dict, max_length=8)  # stale, backlog,
    # capacity (round-robin), frames
    gap_filled: Total | None = None  # missing snippets filled by holding the last embedding
    gap_restarts: Total | None = None  # windows restarted by a long gap, outage or restart
    previews_relayed: Total | None = None  # split host: previews passed on to alerts
    gate_reused: Total | None = None  # change_gate: snippets that reused the last embedding
    gate_encoded: Total | None = None  # change_gate: snippets the image tower encoded
    gate_threshold: Total | None = None  # change_gate: grey levels a pixel must move (measured)
    previews_refused: Total | None = None
    # split host: this camera's messages the link refused, by reason (refused_camera, clock_skew)
    refused: dict[Short, Total] = Field(default_factory=dict, max_length=4)
    snippets_total: Total | None = None  # snippets scored
    latency_ms: Total | None = None  # latest snippet end → score published
    last_ts: Num | None = None
    recent_scores: list[Score] = Field(default_factory=list, max_length=MAX_RECENT_SCORES)


class InferenceInfo(_Body):
    device: Annotated[str, StringConstraints(max_length=20)] | None = None
    precision: Annotated[str, StringConstraints(max_length=12)] | None = None  # what auto chose
    mode: Annotated[str, StringConstraints(max_length=12)] | None = None
    encoder: Text | None = (
        None  # image tower: "torch (local)", "triton up", "triton unreachable (…)"
    )
    cameras: dict[Name, InferenceCamera] = Field(default_factory=dict, max_length=MAX_CAMERAS)
    latency: HistogramBody | None = None  # every scored snippet, all cameras
    loading_s: Total | None = None  # set while the model loads: seconds so far


class InferenceCounters(_OpenCounters):
    malformed: Total | None = None  # messages that failed validation
    batches: Total | None = None
    ring_errors: Total | None = None
    reconnects: Total | None = None  # split host: link reconnects
    ring_mappings: Total | None = None


class InferenceStatus(_Body):
    """Process ``inference``."""

    counters: InferenceCounters = InferenceCounters()
    info: InferenceInfo = InferenceInfo()


class AlertCounters(_OpenCounters):
    pending: Total | None = None  # deliveries waiting for their first attempt
    delivered: Total | None = None
    retrying: Total | None = None  # pending deliveries that already failed at least once
    dead: Total | None = None
    events_total: Total | None = None  # events opened since start
    suppressed_cooldown: Total | None = None  # events not raised: same label in cooldown_s


class RecentEvent(_Body):
    id: Short
    camera: Short
    label: Short
    prob: Score | None = None
    score: Score | None = None
    start: Num | None = None
    duration: Total | None = None
    kind: Literal["start", "update", "end", "explained", "provisional", "withdrawn"]
    snapshot: Text | None = None
    text: Text | None = None  # explanation.text (first 200 characters)


def valid_recent_events(events: list[dict[str, Any]]) -> list[RecentEvent]:
    """The recent events the schema accepts (a label longer than the schema allows is left
    off the dashboard's list, not allowed to stop the heartbeat)."""
    valid = []
    for ev in events:
        with contextlib.suppress(ValidationError):
            valid.append(RecentEvent.model_validate(ev))
    return valid


class AlertInfo(_Body):
    webhooks: Annotated[int, Field(ge=0)] | None = None  # endpoints configured
    open_events: Annotated[int, Field(ge=0)] | None = None
    recent_events: list[RecentEvent] = Field(default_factory=list, max_length=MAX_RECENT_EVENTS)
    alert_latency: HistogramBody | None = None  # webhook queued → delivered, per delivery
    # events the flood guard (alerts.flood_*) kept from being sent, per camera
    flood_suppressed: dict[Name, Total] = Field(default_factory=dict, max_length=MAX_CAMERAS)


class AlertStatus(_Body):
    """Process ``alerts``."""

    counters: AlertCounters = AlertCounters()
    info: AlertInfo = AlertInfo()


Body = CaptureStatus | InferenceStatus | AlertStatus


def body_model(process: str) -> type[Body] | None:
    """The schema a process name promises; None for other children (their body is ignored)."""
    if process == INFERENCE_PROCESS:
        return InferenceStatus
    if process == ALERTS_PROCESS:
        return AlertStatus
    if process.startswith(CAPTURE_PREFIX) and len(process) > len(CAPTURE_PREFIX):
        return CaptureStatus
    return None


# --- what children use to fill the bodies ------------------------------------------------------


class Histogram:
    """Cumulative counts for a heartbeat; ``observe`` may run on another thread than ``body``."""

    def __init__(self, buckets: tuple[float, ...]) -> None:
        self.buckets = buckets
        self._counts = [0] * (len(buckets) + 1)
        self._sum = 0.0
        self._lock = threading.Lock()

    def observe(self, value: float) -> None:
        index = next((i for i, b in enumerate(self.buckets) if value <= b), len(self.buckets))
        with self._lock:
            self._counts[index] += 1
            self._sum += max(value, 0.0)

    def body(self) -> dict[str, object]:
        with self._lock:
            return {"le": list(self.buckets), "counts": list(self._counts), "sum": self._sum}


class RateMeter:
    """Events per second over the last ``window_s`` — None until ``min_span_s`` has passed, so
    the first heartbeat (one frame after a few milliseconds) cannot report hundreds of fps."""

    def __init__(self, window_s: float = 5.0, min_span_s: float = 1.0) -> None:
        self.window_s = window_s
        self.min_span_s = min_span_s
        self._marks: deque[tuple[float, int]] = deque()
        self._since: float | None = None

    def start(self, now: float | None = None) -> None:
        """Count from now (e.g. the moment a source came online); forget older events."""
        self._since = time.monotonic() if now is None else now
        self._marks.clear()

    def add(self, n: int = 1, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        if self._since is None:
            self._since = now
        self._marks.append((now, n))

    def rate(self, now: float | None = None) -> float | None:
        now = time.monotonic() if now is None else now
        if self._since is None or now - self._since < self.min_span_s:
            return None
        while self._marks and now - self._marks[0][0] > self.window_s:
            self._marks.popleft()
        return sum(n for _, n in self._marks) / min(self.window_s, now - self._since)
