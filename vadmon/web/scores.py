"""An event's score curve, read back from the score logs (``vadmon.alerts.scorelog``).

The logs hold every scored snippet per camera per UTC hour; the curve is the C-Branch score
from a little before the event to a little after it, thinned to at most ``MAX_POINTS`` (the
maximum of each bucket, so the peak is never thinned away).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from vadmon.alerts.scorelog import HOUR, read_log

PAD_S = 5.0
MAX_POINTS = 120
MAX_SPAN_S = 3600.0  # an event longer than this shows its first hour


def _hour_files(root: Path, camera: str, t0: float, t1: float) -> list[Path]:
    files, t = [], t0 - t0 % 3600
    while t <= t1:
        path = root / camera / (time.strftime(HOUR, time.gmtime(t)) + ".jsonl")
        if path.is_file():
            files.append(path)
        t += 3600
    return files


def thin(points: list[tuple[float, float]], limit: int) -> list[tuple[float, float]]:
    """At most ``limit`` points: each bucket keeps its highest score."""
    if len(points) <= limit:
        return points
    size = len(points) / limit
    out = []
    for i in range(limit):
        bucket = points[int(i * size) : max(int((i + 1) * size), int(i * size) + 1)]
        out.append(max(bucket, key=lambda p: p[1]))
    return out


def score_curve(root: Path | None, event: dict[str, Any]) -> dict[str, Any]:
    """``{"t": [...], "score": [...], "start_ts", "end_ts"}`` (empty lists without logs)."""
    start = float(event["start_ts"])
    end = event.get("end_ts")
    end = float(end) if end is not None else start + float(event.get("duration_s") or 0.0)
    t0, t1 = start - PAD_S, min(end, start + MAX_SPAN_S) + PAD_S
    points: list[tuple[float, float]] = []
    if root is not None:
        for path in _hour_files(root, str(event["camera"]), t0, t1):
            points += [
                (m.t_end, m.score)
                for m in read_log(path, str(event["camera"]))
                if t0 <= m.t_end <= t1
            ]
    points = thin(sorted(points), MAX_POINTS)
    return {
        "start_ts": start,
        "end_ts": end,
        "t": [round(t, 3) for t, _ in points],
        "score": [round(s, 4) for _, s in points],
    }
