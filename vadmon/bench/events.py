"""Event-level agreement of two score sequences after the monitor's own alert logic.

Scores alone can disagree in ways nobody sees (a 0.3 that becomes 0.4) or in ways that matter
(an alert that starts, or does not): so both sequences go through ``CameraEvents`` with the
default ``alerts`` settings of the config schema, and the resulting events are compared.
"""

from __future__ import annotations

import numpy as np

from vadmon.alerts.event import CameraEvents
from vadmon.config.camera import AlertsConfig
from vadmon.runtime.messages import ScoreMessage
from vadmon.settings import event_settings

Interval = tuple[float, float]


def events_of(scores: np.ndarray, snippet_s: float) -> list[Interval]:
    """(start, end) of every event the alert logic opens on ``scores`` (one camera)."""
    cam = CameraEvents("bench", event_settings(AlertsConfig()))
    out: list[Interval] = []
    for i, s in enumerate(scores):
        msg = ScoreMessage(
            camera="bench", snippet_index=i, t_start=i * snippet_s, t_end=(i + 1) * snippet_s,
            score=float(s), fine=float(s), class_names=["normal", "anomaly"],
            class_probs=[1.0 - float(s), float(s)],
        )  # fmt: skip
        out += [(m.event.start_ts, m.event.end_ts) for m in cam.feed(msg) if m.kind == "end"]
    out += [(m.event.start_ts, m.event.end_ts) for m in cam.close_now("end of sequence")]
    return [(a, b if b is not None else len(scores) * snippet_s) for a, b in out]


def _matched(a: list[Interval], b: list[Interval]) -> int:
    return sum(any(s < e2 and s2 < e for s2, e2 in b) for s, e in a)


def _inside(events: list[Interval], count: int, snippet_s: float) -> np.ndarray:
    mid = (np.arange(count) + 0.5) * snippet_s
    return np.array([any(s <= t <= e for s, e in events) for t in mid], dtype=bool)


def event_agreement(reference: np.ndarray, other: np.ndarray, snippet_s: float) -> dict:
    """Event counts, F1 of overlap-matched events (1.0 when neither has any), and the share
    of snippets whose in-event state agrees."""
    ref, oth = events_of(reference, snippet_s), events_of(other, snippet_s)
    if not ref and not oth:
        f1 = 1.0
    else:
        recall = _matched(ref, oth) / len(ref) if ref else 0.0
        precision = _matched(oth, ref) / len(oth) if oth else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    n = len(reference)
    agree = float((_inside(ref, n, snippet_s) == _inside(oth, n, snippet_s)).mean())
    return {
        "events_offline": len(ref),
        "events_live": len(oth),
        "event_f1": round(f1, 3),
        "state_agree": round(agree, 3),
    }
