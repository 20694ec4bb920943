"""Thresholds from reviewers' verdicts: ``vadmon calibrate --from-feedback``.

A false alarm whose peak score was ``p`` would not have been raised at any threshold above
``p``; a confirmed event with peak ``c`` is lost at any threshold above ``c``. Per camera the
proposal is the lowest threshold (0.01 steps) above every false alarm's peak, unless that
would lose a confirmed event: then the highest threshold that keeps every confirmed event
(never below the current one). Peaks are the raw C-Branch peaks stored with each verdict, so
the proposal is a first step; ``vadmon calibrate --from`` on score logs measures the rate.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

STEP = 0.01
CEILING = 0.99


@dataclass(frozen=True)
class Proposal:
    camera: str
    current: float
    threshold: float
    false_alarms: int
    confirmed: int
    removed: int  # false alarms the proposal would not raise
    kept: int  # confirmed events still raised

    @property
    def changed(self) -> bool:
        return self.threshold != self.current


def _above(peak: float) -> float:
    return min(CEILING, math.floor(peak / STEP + 1e-9) * STEP + STEP)


def _at_most(peak: float) -> float:
    return math.floor(peak / STEP + 1e-9) * STEP


def propose(verdicts: Iterable[dict[str, Any]], current: dict[str, float]) -> list[Proposal]:
    """One proposal per camera with at least one false alarm among ``verdicts`` (rows of the
    ``feedback`` table: camera, verdict, peak_score)."""
    false: dict[str, list[float]] = {}
    good: dict[str, list[float]] = {}
    for row in verdicts:
        peak = row.get("peak_score")
        if peak is None or row.get("camera") not in current:
            continue
        target = false if row.get("verdict") == "false_alarm" else good
        target.setdefault(str(row["camera"]), []).append(float(peak))
    out = []
    for camera, peaks in sorted(false.items()):
        now = current[camera]
        confirmed = good.get(camera, [])
        threshold = max(now, _above(max(peaks)))
        if confirmed and threshold > min(confirmed):
            threshold = max(now, _at_most(min(confirmed)))
        threshold = round(threshold, 2)
        out.append(
            Proposal(
                camera=camera,
                current=now,
                threshold=threshold,
                false_alarms=len(peaks),
                confirmed=len(confirmed),
                removed=sum(p < threshold for p in peaks),
                kept=sum(c >= threshold for c in confirmed),
            )
        )
    return out
