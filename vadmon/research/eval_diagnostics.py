"""What the headline numbers hide: per-class AUC/AP, and the shortcuts a weak model can take.

Per class: a pooled frame AUC is dominated by the classes with the most frames, so each anomaly
class is also scored alone: that class's videos plus *all* normal videos (the frames a monitor
must not alert on), C-Branch score against the frame ground truth.

Shortcuts, measured on normal videos only, where no event can explain a score:

- length: the video score (top-k mean, as in the video AUC) against the video's snippet count.
  Trained on anomalous videos longer than normal ones, a model can learn "long → anomaly"
  (seen: r = 0.61-0.68 on a synthetic set the length warning missed);
- position: within each video, snippet score against its relative position, averaged over the
  videos ("late snippet → anomaly", the same shortcut seen from inside a video).

Both are Spearman correlations; ``STRONG`` or more (either sign) gets a warning line.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from scipy.stats import spearmanr
from sklearn.metrics import average_precision_score, roc_auc_score

from vadmon.model.losses import topk_count
from vadmon.research import annotations as ann
from vadmon.research.metrics import repeat_frames

STRONG = 0.5
MIN_VIDEOS = 5  # fewer normal videos: no length correlation (one video moves it by > 0.3)
WARN_VIDEOS = 10  # a length correlation warns from this many normal videos (r 0.5: p ≈ 0.14)
MIN_SNIPPETS = 4  # shorter videos say nothing about position


def video_score(coarse: np.ndarray) -> float:
    """Top-k mean of a video's C-Branch scores (the statistic the MIL loss trains)."""
    return float(np.sort(coarse)[::-1][: topk_count(len(coarse))].mean())


def per_class(report: Any, normal: Sequence[bool]) -> dict[str, dict[str, float | int]]:
    """Frame AUC/AP per anomaly class (``report`` is an ``EvalReport`` with ground truth)."""
    marks = set(report.normal_marks)
    normal_videos = [r for r, n in zip(report.videos, normal, strict=True) if n]
    out: dict[str, dict[str, float | int]] = {}
    for key in report.gt_classes[1:]:
        videos = [r for r in report.videos if key in r.events(report.normal_marks)[1]]
        chosen = [*videos, *normal_videos]
        gt = ann.frame_gt_from_arrays(
            [r.segments for r in chosen],
            [r.segment_labels for r in chosen],
            [r.frames for r in chosen],
            marks,
        )
        if not videos or not 0 < gt.sum() < len(gt):
            continue
        scores = repeat_frames([r.coarse for r in chosen])
        out[key] = {
            "videos": len(videos),
            "auc": float(roc_auc_score(gt, scores)),
            "ap": float(average_precision_score(gt, scores)),
        }
    return out


def _spearman(x: np.ndarray, y: np.ndarray) -> tuple[float, float] | None:
    if len(x) < 3 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return None
    r, p = spearmanr(x, y)
    return float(r), float(p)


def shortcuts(videos: Sequence[Any]) -> dict[str, Any]:
    """Length and position correlations of the C-Branch score on normal videos (``VideoResult``)."""
    out: dict[str, Any] = {"normal_videos": len(videos), "length": None, "position": None}
    if len(videos) >= MIN_VIDEOS:
        lengths = np.array([len(v.coarse) for v in videos], dtype=np.float64)
        found = _spearman(lengths, np.array([video_score(v.coarse) for v in videos]))
        if found is not None:
            out["length"] = {"r": found[0], "p": found[1]}
    within = []
    for v in videos:
        if len(v.coarse) >= MIN_SNIPPETS:
            found = _spearman(np.arange(len(v.coarse), dtype=np.float64), v.coarse)
            if found is not None:
                within.append(found[0])
    if within:
        out["position"] = {"r": float(np.mean(within)), "videos": len(within)}
    return out


def diagnose(report: Any, normal: Sequence[bool]) -> dict[str, Any]:
    """The ``per_class`` and ``shortcuts`` sections of the eval report."""
    has_frames = report.gt_kind is not None and report.coarse is not None
    return {
        "per_class": per_class(report, normal) if has_frames else {},
        "shortcuts": shortcuts([r for r, n in zip(report.videos, normal, strict=True) if n]),
    }


def lines(diag: dict[str, Any]) -> list[str]:
    """Summary lines: one per class, the correlations, and a warning when one is strong."""
    out = [
        f"  class {key} ({m['videos']} videos + all normal): frame AUC {m['auc']:.4f}  "
        f"AP {m['ap']:.4f}"
        for key, m in diag.get("per_class", {}).items()
    ]
    sc = diag.get("shortcuts") or {}
    length, position = sc.get("length"), sc.get("position")
    if length is None and position is None:
        return out
    cells = []
    if length is not None:
        cells.append(f"score~length r={length['r']:+.2f} (p={length['p']:.3f})")
    if position is not None:
        cells.append(f"score~position r={position['r']:+.2f} (mean of {position['videos']})")
    out.append(f"normal videos ({sc['normal_videos']}): " + ", ".join(cells))
    enough = {"length": sc["normal_videos"] >= WARN_VIDEOS, "position": True}
    strong = [
        name for name, m in (("length", length), ("position", position))
        if m is not None and abs(m["r"]) >= STRONG and enough[name]
    ]  # fmt: skip
    if strong:
        out.append(
            f"warning: on normal videos the score follows {' and '.join(strong)} "
            f"(|r| ≥ {STRONG}): the model may have learned a shortcut, not the event; balance "
            "training lengths and compare with --probe"
        )
    return out
