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
from vadmon.research.eval_export import snippet_gt
from vadmon.research.evaluate import FRAMES, EvalReport, VideoResult

NORMAL = frozenset({"A"})


def video_error(video: VideoResult, report: EvalReport) -> float:
    """How wrong the model is on one video: with frame ground truth, the mean |C-Branch score −
    event fraction| over its snippets; otherwise |video score − weak label| (video score = top-k
    mean, the statistic the training loss uses)."""
    if report.gt_kind is not None:
        return float(np.abs(video.coarse - snippet_gt(video, report.normal_marks)).mean())
    score = float(np.sort(video.coarse)[::-1][: topk_count(len(video.coarse))].mean())
    return score if video.label == report.gt_classes[0] else 1.0 - score


def choose_videos(
    report: EvalReport, names: list[str] | None, top: int | None
) -> tuple[list[VideoResult], str]:
    """(videos, the rule that picked them): the named ones, or the ``top`` N largest errors."""
    by_name = {v.video: v for v in report.videos}
    if names:
        missing = [n for n in names if n not in by_name]
        if missing:
            raise VadmonError(
                f"video {missing[0]!r} is not in the test list", fix="use names without __<crop>"
            )
        return [by_name[n] for n in names], "listed with --plot-videos"
    n = max(0, top or 0)
    ranked = sorted(report.videos, key=lambda v: video_error(v, report), reverse=True)[:n]
    what = (
        "mean |C-Branch score − event fraction| per snippet"
        if report.gt_kind is not None
        else "|top-k mean C-Branch score − video label|"
    )
    return ranked, f"the {n} largest errors by {what}"


def _box(extent) -> list[float]:
    return [round(float(v), 1) for v in (extent.x0, extent.y0, extent.x1, extent.y1)]


def _safe_name(video: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", video)[:120] or "video"


def plot_video(video: VideoResult, out_dir: Path, normal: frozenset[str] = NORMAL) -> Path:
    """Write ``<video>.png`` (score vs frame, events shaded, legend outside the axes) and
    ``<video>.json`` (the plotted numbers and the rendered layout)."""
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
    segments, labels = video.events(normal)
    for i, (start, end) in enumerate(segments):
        label = "ground truth" if i == 0 else None
        ax.axvspan(start, end, color="tab:red", alpha=0.2, lw=0, label=label)
    ax.plot(frames, coarse, color="tab:blue", lw=1.2, label="coarse (C-Branch)")
    ax.plot(frames, fine, color="tab:orange", lw=1.0, alpha=0.8, label="fine (1 − P(normal))")
    if video.probe is not None:
        probe = np.repeat(video.probe, FRAMES)
        ax.plot(frames, probe, color="tab:gray", lw=1.0, ls="--", label="supervised probe")
    ax.set_ylim(-0.02, 1.02)
    ax.set_xlim(0, max(1, video.frames))
    ax.set_xlabel("frame")
    ax.set_ylabel("anomaly score")
    ax.set_title(f"{video.video} ({video.label})")
    # outside the axes, so it never hides a curve
    legend = ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0.0, fontsize=8)
    fig.tight_layout()
    fig.canvas.draw()
    layout = {  # rendered boxes in pixels, so a program can check the legend hides no curve
        "axes": _box(ax.get_window_extent()),
        "legend": _box(legend.get_window_extent()),
    }
    png = out_dir / f"{_safe_name(video.video)}.png"
    tmp = png.with_name("." + png.name + ".tmp.png")
    fig.savefig(tmp, bbox_inches="tight")
    plt.close(fig)
    tmp.replace(png)
    data = {
        "video": video.video,
        "label": video.label,
        "frames": int(video.frames),
        "frames_per_snippet": FRAMES,
        "coarse": [round(float(x), 6) for x in video.coarse],
        "fine": [round(float(x), 6) for x in video.fine],
        "segments": segments,
        "segment_labels": labels,
        "probe": None if video.probe is None else [round(float(x), 6) for x in video.probe],
        "layout": layout,
    }
    atomic_write_text(png.with_suffix(".json"), json.dumps(data) + "\n")
    return png


def plot_report(
    report: EvalReport, out_dir: Path, names: list[str] | None = None, top: int | None = None
) -> tuple[list[Path], str]:
    """Plot the chosen videos; returns the PNGs and the rule that chose them."""
    videos, rule = choose_videos(report, names, top)
    return [plot_video(v, Path(out_dir), report.normal_marks) for v in videos], rule
