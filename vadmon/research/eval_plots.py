"""Score timelines against ground truth, one PNG per video (matplotlib, imported lazily).

Beside each ``<video>.png`` a ``<video>.json`` holds exactly the plotted numbers (frame axis,
both scores, GT segments), so what a reader sees can be checked by a program as well.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np

from vadmon.atomic import atomic_write_text
from vadmon.errors import VadmonError
from vadmon.model.losses import topk_count
from vadmon.research.evaluate import FRAMES, EvalReport, VideoResult

NORMAL = frozenset({"A"})


def choose_videos(
    report: EvalReport, names: list[str] | None, top: int | None
) -> list[VideoResult]:
    """Named videos, or the ``top`` N by video score (top-k mean C-Branch probability)."""
    by_name = {v.video: v for v in report.videos}
    if names:
        missing = [n for n in names if n not in by_name]
        if missing:
            raise VadmonError(
                f"video {missing[0]!r} is not in the test list", fix="use names without __<crop>"
            )
        return [by_name[n] for n in names]

    def score(v: VideoResult) -> float:
        return float(np.sort(v.coarse)[::-1][: topk_count(len(v.coarse))].mean())

    return sorted(report.videos, key=score, reverse=True)[: max(0, top or 0)]


def _safe_name(video: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", video)[:120] or "video"


def plot_video(video: VideoResult, out_dir: Path, normal: frozenset[str] = NORMAL) -> Path:
    """Write ``<video>.png`` (score vs frame, anomalous GT shaded) and ``<video>.json``."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise VadmonError(
            "plots need matplotlib", fix="pip install 'vadmon[plots]' (or drop --plots)"
        ) from None
    out_dir.mkdir(parents=True, exist_ok=True)
    frames = np.arange(video.frames)
    coarse = np.repeat(video.coarse, FRAMES)
    fine = np.repeat(video.fine, FRAMES)
    fig, ax = plt.subplots(figsize=(10, 3), dpi=100)
    for (start, end), label in zip(video.segments, video.segment_labels, strict=True):
        if label not in normal:
            ax.axvspan(start, end, color="tab:red", alpha=0.2, lw=0)
    ax.plot(frames, coarse, color="tab:blue", lw=1.2, label="coarse (C-Branch)")
    ax.plot(frames, fine, color="tab:orange", lw=1.0, alpha=0.8, label="fine (1 − P(normal))")
    ax.set_ylim(-0.02, 1.02)
    ax.set_xlim(0, max(1, video.frames))
    ax.set_xlabel("frame")
    ax.set_ylabel("anomaly score")
    ax.set_title(f"{video.video} ({video.label})")
    ax.legend(loc="upper right", fontsize=8)
    fig.tight_layout()
    png = out_dir / f"{_safe_name(video.video)}.png"
    tmp = png.with_name("." + png.name + ".tmp.png")
    fig.savefig(tmp)
    plt.close(fig)
    tmp.replace(png)
    data = {
        "video": video.video,
        "label": video.label,
        "frames": int(video.frames),
        "frames_per_snippet": FRAMES,
        "coarse": [round(float(x), 6) for x in video.coarse],
        "fine": [round(float(x), 6) for x in video.fine],
        "segments": [list(s) for s in video.segments],
        "segment_labels": list(video.segment_labels),
    }
    atomic_write_text(png.with_suffix(".json"), json.dumps(data) + "\n")
    return png


def plot_report(
    report: EvalReport, out_dir: Path, names: list[str] | None = None, top: int | None = None
) -> list[Path]:
    normal = frozenset({"A", *report.gt_classes[:1]})
    return [plot_video(v, Path(out_dir), normal) for v in choose_videos(report, names, top)]
