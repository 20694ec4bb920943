"""Per-snippet scores of an evaluation, for analysis outside vadmon (CSV and NPZ).

``scores.csv`` has one row per snippet (``video, label, snippet, start_frame, end_frame, coarse,
fine, gt, probe``): ``gt`` is the fraction of the snippet's frames inside annotated events (empty
without frame ground truth), ``probe`` the supervised probe's score (empty without ``--probe``).
``scores.npz`` holds the same columns as flat arrays with per-video ``offsets`` (video ``i`` is
rows ``offsets[i]:offsets[i+1]``), plus ``class_probs [N, C]`` and ``class_names``.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

import numpy as np

from vadmon.atomic import atomic_path, atomic_write_text
from vadmon.research.evaluate import FRAMES, EvalReport, VideoResult

COLUMNS = ("video", "label", "snippet", "start_frame", "end_frame", "coarse", "fine", "gt", "probe")


def snippet_gt(video: VideoResult, normal: frozenset[str]) -> np.ndarray:
    """Fraction of each snippet's frames inside the video's annotated events."""
    frames = np.zeros(video.frames, dtype=np.float64)
    for start, end in video.events(normal)[0]:
        frames[max(0, start) : min(video.frames, end)] = 1.0
    return frames.reshape(len(video.coarse), FRAMES).mean(axis=1)


def _columns(report: EvalReport) -> dict[str, np.ndarray]:
    has_gt = report.gt_kind is not None
    has_probe = report.probe is not None
    nan = [np.full(len(v.coarse), np.nan) for v in report.videos]
    return {
        "coarse": np.concatenate([v.coarse for v in report.videos]),
        "fine": np.concatenate([v.fine for v in report.videos]),
        "gt": np.concatenate(
            [snippet_gt(v, report.normal_marks) for v in report.videos] if has_gt else nan
        ),
        "probe": np.concatenate(
            [v.probe if v.probe is not None else n for v, n in zip(report.videos, nan, strict=True)]
            if has_probe
            else nan
        ),
    }


def _cell(x: float) -> str:
    return "" if np.isnan(x) else f"{x:.6f}"


def write_scores(report: EvalReport, out_dir: Path) -> tuple[Path, Path]:
    """Write ``scores.csv`` and ``scores.npz`` into ``out_dir``; returns both paths."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    cols = _columns(report)
    names = [v.video for v in report.videos]
    offsets = np.cumsum([0] + [len(v.coarse) for v in report.videos])
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(COLUMNS)
    for i, v in enumerate(report.videos):
        for t in range(len(v.coarse)):
            row = offsets[i] + t
            values = [_cell(float(cols[k][row])) for k in ("coarse", "fine", "gt", "probe")]
            writer.writerow([v.video, v.label, t, t * FRAMES, (t + 1) * FRAMES, *values])
    csv_path = out_dir / "scores.csv"
    atomic_write_text(csv_path, buf.getvalue())
    npz_path = out_dir / "scores.npz"
    with atomic_path(npz_path, suffix=".npz") as tmp:
        np.savez(
            tmp,
            video=np.array(names),
            label=np.array([v.label for v in report.videos]),
            offsets=offsets,
            class_probs=np.concatenate([v.class_probs for v in report.videos]),
            class_names=np.array(report.class_names),
            **cols,
        )
    return csv_path, npz_path
