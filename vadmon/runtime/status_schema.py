"""Heartbeat field schema shared by the capture, inference and alert processes and the dashboard.

Every child sends ``[b"status", JSON]`` heartbeats (see ``vadmon.runtime.heartbeat``) about once a
second. Besides ``process``/``ts``/``pid`` the JSON carries the fields below; the dashboard and
the Prometheus exporter read them and nothing else, so this module is the contract. Readers are
tolerant: a missing or mistyped field shows as "unknown", never as an error, because a child
of an older or newer version must not take the dashboard down.

Heartbeats are capped at 64 KiB (``heartbeat.MAX_BYTES``): keep lists short
(``MAX_RECENT_EVENTS`` events, latency samples since the previous beat only).

Process names::

    capture:<camera>   one per camera (CAPTURE_PREFIX + camera name)
    inference          the batched CLIP/VadCLIP process
    alerts             events, clips and webhook delivery

Example capture heartbeat::

    {"process": "capture:door", "ts": 1718000000.5, "pid": 4242,
     "camera": "door", "state": "online",
     "counters": {"frames_total": 12000, "fps": 9.8, "drops_total": 3,
                  "reconnects_total": 1, "stalls_total": 0, "snippets_total": 750},
     "info": {"source": "rtsp://***@10.0.0.5/stream1", "resolution": "768x576"}}

Example inference heartbeat::

    {"process": "inference", "ts": ..., "pid": ...,
     "info": {"device": "cuda:0", "precision": "bf16", "mode": "vadclip",
              "cameras": {"door": {"score": 0.12, "label": "normal", "label_prob": 0.91,
                                   "fps": 0.6, "skipped_total": 4, "latency_ms": 35.2,
                                   "last_ts": 1718000000.1}}}}

Example alerts heartbeat::

    {"process": "alerts", "ts": ..., "pid": ...,
     "counters": {"pending": 1, "delivered": 20, "retrying": 1, "dead": 0, "events_total": 7,
                  "suppressed_cooldown": 2},
     "info": {"recent_events": [{"id": "1718000000.000000-a1b2c3", "camera": "door",
                                 "label": "Fighting", "prob": 0.81, "start": 1718000000.0,
                                 "duration": 4.5, "kind": "update"}],
              "alert_latency_ms": [120.5, 98.0]}}
"""

from __future__ import annotations

import math
from typing import Any, Literal, TypedDict

CAPTURE_PREFIX = "capture:"
INFERENCE_PROCESS = "inference"
ALERTS_PROCESS = "alerts"

CameraState = Literal["connecting", "online", "stalled", "offline"]
CAMERA_STATES: tuple[str, ...] = ("connecting", "online", "stalled", "offline")
EventKind = Literal["start", "update", "end"]
MAX_RECENT_EVENTS = 10


class CaptureCounters(TypedDict, total=False):
    frames_total: int  # frames read since the process started
    fps: float  # capture frames per second (recent average)
    drops_total: int  # frames dropped because the ring/consumer was behind
    reconnects_total: int  # watchdog reconnects since start
    stalls_total: int  # times the watchdog declared the stream stalled
    snippets_total: int  # 16-frame snippets published


class CaptureInfo(TypedDict, total=False):
    source: str  # ALREADY REDACTED (vadmon.redact) — never send credentials
    resolution: str  # "WxH"


class CaptureFields(TypedDict, total=False):
    """Process ``capture:<camera>``."""

    camera: str
    state: CameraState
    counters: CaptureCounters
    info: CaptureInfo


class InferenceCamera(TypedDict, total=False):
    score: float  # latest C-Branch anomaly score in [0, 1]
    label: str  # most probable class (may be the normal class)
    label_prob: float  # its probability
    fps: float  # snippets scored per second for this camera
    skipped_total: int  # snippets skipped (latest-wins) since start
    latency_ms: float  # latest snippet-ready → score latency
    last_ts: float  # unix time of the latest score; a new value = a new score sample


class InferenceInfo(TypedDict, total=False):
    device: str  # "cpu", "cuda:0"
    precision: str  # "fp32", "bf16"
    mode: str  # "vadclip" | "zeroshot"
    cameras: dict[str, InferenceCamera]


class InferenceFields(TypedDict, total=False):
    """Process ``inference``."""

    info: InferenceInfo


class AlertCounters(TypedDict, total=False):
    pending: int  # webhook deliveries waiting for their first attempt
    delivered: int  # delivered (cumulative, as stored in the outbox)
    retrying: int  # pending deliveries that already failed at least once
    dead: int  # gave up (dead letters)
    events_total: int  # events opened since start
    suppressed_cooldown: int  # events not raised: same camera+label within cooldown_s


class RecentEvent(TypedDict, total=False):
    id: str  # "{ts:.6f}-{rand6}"
    camera: str
    label: str
    prob: float
    start: float  # unix time the event started
    duration: float  # seconds so far (open) or total (ended)
    kind: EventKind  # the latest lifecycle message sent for it


class AlertInfo(TypedDict, total=False):
    recent_events: list[RecentEvent]  # newest first, at most MAX_RECENT_EVENTS
    alert_latency_ms: list[float]  # score-emitted → webhook-queued, NEW samples since last beat


class AlertFields(TypedDict, total=False):
    """Process ``alerts``."""

    counters: AlertCounters
    info: AlertInfo


# --- tolerant readers ---------------------------------------------------------------------


def as_dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def as_num(value: Any) -> float | None:
    """A finite number or None (bools, strings, NaN and inf are treated as missing)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def as_str(value: Any, limit: int = 200) -> str | None:
    return value[:limit] if isinstance(value, str) else None


def camera_of(process: str, fields: dict[str, Any]) -> str | None:
    """The camera a capture heartbeat is about: its ``camera`` field, else the process name."""
    name = as_str(fields.get("camera"))
    if name:
        return name
    if process.startswith(CAPTURE_PREFIX) and len(process) > len(CAPTURE_PREFIX):
        return process[len(CAPTURE_PREFIX) :]
    return None
