"""Time to detect: ground-truth onset → first snippet above threshold, and → alert start.

Clock (the monitor's): snippet ``i`` covers ``[i·s, (i+1)·s)`` with ``s = 16 / fps``; its score
exists once the snippet and the ``d`` snippets of lookahead after it are captured, at
``(i + 1 + d)·s`` (the scorer reports the lookahead it actually had, less at a video's end).
Compute time is not counted: it is measured by ``vadmon bench``, not here.

- snippet: the first snippet inside the event whose C-Branch score is ≥ the alert threshold;
  latency = when that score exists − onset (``onset = start_frame / fps``).
- alert: the scores go, in order, through the monitor's own ``CameraEvents`` with the alert
  rules of a config (smoothing, ``min_duration_s``, ``labels_ignore`` …). An alert counts for an
  annotated event when its span overlaps the event and it began before the event ended;
  latency = when its ``start`` message was emitted − onset, 0 when one was already open.

Missed events have no latency; the summary gives the share detected and the median and 95th
percentile of the latencies of the detected ones.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from vadmon.alerts.event import CameraEvents, EventSettings
from vadmon.research.metrics import FRAMES_PER_SNIPPET
from vadmon.runtime.messages import ScoreMessage


@dataclass(frozen=True)
class Stream:
    """One video's scores as the monitor would publish them."""

    coarse: np.ndarray  # [T]
    class_probs: np.ndarray  # [T, C]
    arrival: np.ndarray  # [T] seconds from the video start when each score exists


@dataclass(frozen=True)
class Alert:
    start_ts: float
    emitted: float
    end_ts: float | None


def arrival_times(lookaheads: Sequence[int], snippet_s: float) -> np.ndarray:
    """When each snippet's score exists, from the lookahead each one was scored with."""
    idx = np.arange(len(lookaheads), dtype=np.float64)
    return (idx + 1 + np.asarray(lookaheads, dtype=np.float64)) * snippet_s


def alerts_of(stream: Stream, class_names: list[str], rules: EventSettings, snippet_s: float):
    """Every alert the monitor's event logic raises on one video's scores."""
    cam = CameraEvents("eval", rules)
    opened: dict[str, Alert] = {}
    for i, score in enumerate(stream.coarse):
        msg = ScoreMessage(
            camera="eval", snippet_index=i, t_start=i * snippet_s, t_end=(i + 1) * snippet_s,
            score=float(score), fine=float(score), class_names=list(class_names),
            class_probs=[float(p) for p in stream.class_probs[i]],
        )  # fmt: skip
        for m in cam.feed(msg):
            _note(opened, m, float(stream.arrival[i]))
    for m in cam.close_now("end of video"):
        _note(opened, m, float(stream.arrival[-1]))
    return list(opened.values())


def _note(opened: dict[str, Alert], m, now: float) -> None:
    ev = m.event
    if m.kind == "start":
        opened[ev.id] = Alert(ev.start_ts, now, None)
    elif m.kind == "end" and ev.id in opened:
        a = opened[ev.id]
        opened[ev.id] = Alert(a.start_ts, a.emitted, ev.end_ts)


def snippet_latency(
    stream: Stream, segment: tuple[int, int], threshold: float, fps: float
) -> float | None:
    """Onset → the first in-event snippet score ≥ ``threshold`` exists (None: never)."""
    onset = segment[0] / fps
    first = segment[0] // FRAMES_PER_SNIPPET
    last = min(len(stream.coarse), math.ceil(segment[1] / FRAMES_PER_SNIPPET))
    hits = np.flatnonzero(stream.coarse[first:last] >= threshold)
    return float(stream.arrival[first + hits[0]] - onset) if len(hits) else None


def alert_latency(alerts: Sequence[Alert], segment: tuple[int, int], fps: float) -> float | None:
    """Onset → the first alert that covers the event is emitted (None: missed)."""
    onset, end = segment[0] / fps, segment[1] / fps
    hits = [
        a.emitted for a in alerts if a.start_ts < end and (a.end_ts is None or a.end_ts > onset)
    ]
    return max(0.0, min(hits) - onset) if hits else None


def summary(latencies: Sequence[float | None]) -> dict[str, float | int | None]:
    """Median and p95 of the detected events' latencies, and the share detected."""
    found = np.array([x for x in latencies if x is not None], dtype=np.float64)
    n = len(latencies)
    return {
        "events": n,
        "detected": round(len(found) / n, 4) if n else None,
        "median_s": round(float(np.median(found)), 3) if len(found) else None,
        "p95_s": round(float(np.percentile(found, 95)), 3) if len(found) else None,
    }
