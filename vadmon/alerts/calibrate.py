"""Choose a camera's threshold from footage declared normal: events per day vs threshold.

Every event that fires on normal footage is a false alarm, so replaying the exact alert logic
over normal scores at each candidate threshold gives the false-alarm rate that threshold would
have produced: events / hours of footage, scaled to a day. The chosen threshold is the lowest
one whose rate, and the rate of every higher candidate, is at most the target — the most
sensitive setting that keeps the promise, robust to a non-monotone bump in the curve.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from vadmon.alerts.event import EventSettings
from vadmon.alerts.replay import replay, with_threshold
from vadmon.runtime.messages import ScoreMessage

DAY_S = 86400.0


@dataclass(frozen=True)
class CurvePoint:
    threshold: float
    events: int
    per_day: float


def footage_seconds(scores: Sequence[ScoreMessage]) -> float:
    """Time covered by scored snippets, per camera, overlaps counted once."""
    total = 0.0
    by_cam: dict[str, list[tuple[float, float]]] = {}
    for m in scores:
        by_cam.setdefault(m.camera, []).append((m.t_start, m.t_end))
    for spans in by_cam.values():
        end = -float("inf")
        for t0, t1 in sorted(spans):
            if t1 > end:
                total += t1 - max(t0, end)
                end = t1
    return total


def thresholds_grid(low: float, high: float = 0.99, step: float = 0.01) -> list[float]:
    n = int(round((high - low) / step))
    return [round(low + i * step, 4) for i in range(n + 1)]


def curve(
    scores: Sequence[ScoreMessage], base: EventSettings, thresholds: Sequence[float]
) -> list[CurvePoint]:
    seconds = footage_seconds(scores)
    if seconds <= 0:
        raise ValueError("the score log covers no time")
    points = []
    for t in thresholds:
        result = replay(scores, with_threshold(base, t))
        n = len(result.starts())
        points.append(CurvePoint(t, n, n * DAY_S / seconds))
    return points


def choose(points: Sequence[CurvePoint], target_per_day: float) -> CurvePoint | None:
    """Lowest threshold whose rate and every higher threshold's rate meet the target."""
    best = None
    for p in sorted(points, key=lambda p: p.threshold, reverse=True):
        if p.per_day > target_per_day:
            break
        best = p
    return best


# one-sided 95 %: seeing 0 events in H hours bounds the rate by 3/H ("rule of three"); the same
# factor tells how much footage a target needs before "no false alarm seen" means ≤ target
RULE_OF_THREE = 3.0


def rate_bound(events: int, hours: float, target_per_day: float) -> tuple[float, float]:
    """(upper bound on false alarms/day at ~95 %, hours of footage the target needs).

    (events + 3)/hours·24: with 0 events that is the rule of three; with more, a coarse but
    safe one-sided bound (the exact Poisson bound is smaller). Less footage than
    ``RULE_OF_THREE / target`` days cannot show the target is met, whatever was seen."""
    upper = (events + RULE_OF_THREE) / max(hours, 1e-9) * 24
    return upper, RULE_OF_THREE / target_per_day * 24
