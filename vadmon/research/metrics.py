"""Paper metrics for weakly supervised video anomaly detection, computed exactly as published.

Two families of numbers are reported by VadCLIP and its predecessors:

* **Frame level** (``frame_auc_ap``): every snippet score is repeated 16 times (a snippet is 16
  frames) and the concatenation over all test videos is compared with per-frame 0/1 labels using
  scikit-learn's ROC-AUC and average precision. The published code feeds the C-branch
  ``sigmoid(logits1)``; when only class posteriors are available (as in the official metric
  fixtures) the fine score ``1 − posterior[:, 0]`` is used — that is what the fixtures' expected
  AUC/AP were computed from (it reproduces them to ~1e-8; the residue comes from the posteriors
  having been rounded to float32 before they were stored).
* **Detection mAP@IoU** (``detection_map``): the W-TALC style localisation protocol that VadCLIP
  ships. Its quirks are reproduced on purpose so numbers are comparable with the paper, e.g. the
  normal class counts in the mean, and a whole IoU level scores 0 as soon as one class has no
  proposal in any video.

Frame ranges are half-open ``[start, end)`` integer frame indices everywhere; the IoU of two
ranges is the IoU of their sets of frame indices, as in the published code.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from sklearn.metrics import average_precision_score, roc_auc_score

FRAMES_PER_SNIPPET = 16
DEFAULT_IOUS: tuple[float, ...] = (0.1, 0.2, 0.3, 0.4, 0.5)
THRESHOLD_FRACTION = 0.6  # a frame is "on" when above max − 0.6·(max − min)
MIN_RUN_FRAMES = 2
CLASS_SCORE_WEIGHT = 0.7  # proposal score = max(run) + 0.7·c_score
NMS_IOU = 0.6


@dataclass(frozen=True)
class Proposal:
    """A scored candidate segment ``[start, end)`` in frames of one video."""

    video: int
    start: int
    end: int
    score: float


@dataclass(frozen=True)
class Segment:
    """A ground-truth segment ``[start, end)`` in frames of one video."""

    video: int
    start: int
    end: int


@dataclass
class PaperMetrics:
    """Everything a paper table reports for one test set."""

    auc: float
    ap: float
    map_iou: list[float] = field(default_factory=lambda: list(DEFAULT_IOUS))
    map: list[float] = field(default_factory=list)

    @property
    def map_avg(self) -> float:
        return float(np.mean(self.map)) if self.map else float("nan")


# --------------------------------------------------------------------------- frame level


def repeat_frames(
    snippet_scores: Sequence[np.ndarray], repeat: int = FRAMES_PER_SNIPPET
) -> np.ndarray:
    """Expand per-snippet arrays (``[T]`` or ``[T, C]``) to frames and concatenate over videos."""
    return np.concatenate([np.repeat(np.asarray(s), repeat, axis=0) for s in snippet_scores])


def frame_auc_ap(
    snippet_scores: Sequence[np.ndarray], frame_gt: np.ndarray, repeat: int = FRAMES_PER_SNIPPET
) -> tuple[float, float]:
    """ROC-AUC and AP over all test frames; ``frame_gt`` holds ``repeat·ΣT`` 0/1 labels."""
    scores = repeat_frames(snippet_scores, repeat)
    gt = np.asarray(frame_gt)
    if scores.shape[0] != gt.shape[0]:
        raise ValueError(f"{scores.shape[0]} frame scores but {gt.shape[0]} frame labels")
    return float(roc_auc_score(gt, scores)), float(average_precision_score(gt, scores))


def fine_anomaly_score(posteriors: np.ndarray) -> np.ndarray:
    """A-branch anomaly score per snippet: ``1 − P(normal)`` (class 0 is normal)."""
    p = np.asarray(posteriors)
    return 1 - p[:, 0]


# --------------------------------------------------------------------------- detection pieces


def runs_above(values: np.ndarray, threshold: float | np.ndarray) -> list[tuple[int, int]]:
    """Maximal half-open runs ``[s, e)`` where ``values > threshold`` (strictly)."""
    on = np.concatenate([[0], (np.asarray(values) > threshold).astype(np.int8), [0]])
    diff = np.diff(on)
    starts = np.flatnonzero(diff == 1)
    ends = np.flatnonzero(diff == -1)
    return [(int(s), int(e)) for s, e in zip(starts, ends, strict=True)]


def class_scores(frame_posteriors: np.ndarray) -> np.ndarray:
    """Video-level score per class: mean of the top ``⌊frames/16⌋`` frame posteriors.

    Kept in the input dtype (float32 for real model outputs) because the published code does so,
    and proposal scores — hence ranking ties — inherit it.
    """
    p = np.asarray(frame_posteriors)
    k = p.shape[0] // FRAMES_PER_SNIPPET
    top = -np.sort(-p, axis=0)[:k]
    return np.mean(top, axis=0)


def interval_iou(a: tuple[int, int], b: tuple[int, int]) -> float:
    """IoU of the integer frame sets ``range(*a)`` and ``range(*b)``."""
    inter = max(0, min(a[1], b[1]) - max(a[0], b[0]))
    union = max(0, a[1] - a[0]) + max(0, b[1] - b[0]) - inter
    return inter / union if union > 0 else 0.0


def nms(proposals: Sequence[Proposal], iou: float = NMS_IOU) -> list[Proposal]:
    """Greedy 1-D non-maximum suppression: visiting proposals by descending score, drop any whose
    IoU with an already kept proposal of the same video exceeds ``iou``.

    Runs from one threshold of one posterior are disjoint, so within the published protocol
    this never removes anything; it is kept so the procedure is the published one. The
    survivors keep their input order so that the final (unstable) ranking sees the same
    sequence as the published code and breaks score ties identically.
    """
    order = sorted(range(len(proposals)), key=lambda i: -proposals[i].score)
    kept: list[int] = []
    for i in order:
        p = proposals[i]
        if all(
            proposals[k].video != p.video
            or interval_iou((proposals[k].start, proposals[k].end), (p.start, p.end)) <= iou
            for k in kept
        ):
            kept.append(i)
    return [proposals[i] for i in sorted(kept)]


def video_proposals(values: np.ndarray, c_score: float, video: int) -> list[Proposal]:
    """Proposals of one class in one video from its per-frame posterior ``values``.

    Arithmetic mirrors the published code under NumPy 1.x promotion rules: threshold and score
    are float64 while the comparison happens in the array's dtype. This matters only for ties
    and exact-threshold frames, but those decide the last digits of the fixtures.
    """
    v = np.asarray(values)
    vmax, vmin = float(v.max()), float(v.min())
    threshold = np.asarray(vmax - (vmax - vmin) * THRESHOLD_FRACTION, dtype=v.dtype)
    out = []
    for s, e in runs_above(v, threshold):
        if e - s >= MIN_RUN_FRAMES:
            score = float(v[s:e].max()) + CLASS_SCORE_WEIGHT * float(c_score)
            out.append(Proposal(video, s, e, score))
    return out


def average_precision(proposals: Sequence[Proposal], gt: Sequence[Segment], iou: float) -> float:
    """Greedy matching in descending score order; AP = Σ precision·tp / #gt (0 without a tp).

    A proposal matches the unmatched ground-truth segment of its video with the highest IoU,
    provided that IoU ≥ ``iou``; each ground-truth segment is matched at most once.
    """
    scores = np.array([p.score for p in proposals], dtype=np.float64)
    order = np.argsort(-scores)  # same (unstable) sort as the published code, for identical ties
    remaining = list(gt)
    tp = np.zeros(len(proposals))
    for rank, idx in enumerate(order):
        p = proposals[idx]
        best_j, best_iou = -1, 0.0
        for j, g in enumerate(remaining):
            if g.video != p.video:
                continue
            o = interval_iou((g.start, g.end), (p.start, p.end))
            if o >= iou and o > best_iou:
                best_j, best_iou = j, o
        if best_j >= 0:
            del remaining[best_j]
            tp[rank] = 1.0
    if tp.sum() == 0:
        return 0.0
    tp_c = np.cumsum(tp)
    precision = tp_c / np.arange(1, len(tp) + 1)
    return float(np.sum(precision * tp) / len(gt))


# --------------------------------------------------------------------------- detection mAP


def class_proposals(frame_posteriors: Sequence[np.ndarray], c: int) -> list[Proposal]:
    """All proposals for class ``c`` over the test set (NMS applied per video)."""
    out: list[Proposal] = []
    for video, p in enumerate(frame_posteriors):
        c_s = class_scores(p)
        values = p[:, c] * (c_s[c] > 0)  # classes with a non-positive video score are zeroed
        out.extend(nms(video_proposals(values, c_s[c], video)))
    return out


def detection_map(
    snippet_posteriors: Sequence[np.ndarray],
    gt_segments: Sequence[Sequence[tuple[int, int]]],
    gt_labels: Sequence[Sequence[str]],
    classes: Sequence[str],
    ious: Sequence[float] = DEFAULT_IOUS,
) -> list[float]:
    """mAP (percent) at each IoU over all ``classes`` (class ``c`` = posterior column ``c``).

    ``snippet_posteriors`` are per-video ``[T, C]`` class posteriors; they are repeated ×16 to
    frames. A ground-truth segment counts for class ``c`` when its label equals ``classes[c]``.
    """
    frame_post = [np.repeat(np.asarray(p), FRAMES_PER_SNIPPET, axis=0) for p in snippet_posteriors]
    if len(frame_post) != len(gt_segments) or len(gt_segments) != len(gt_labels):
        raise ValueError("posteriors, gt_segments and gt_labels must list the same videos")
    proposals = [class_proposals(frame_post, c) for c in range(len(classes))]
    gts = [
        [
            Segment(v, int(s), int(e))
            for v, (segs, labs) in enumerate(zip(gt_segments, gt_labels, strict=True))
            for (s, e), lab in zip(segs, labs, strict=True)
            if str(lab) == name
        ]
        for name in classes
    ]
    result = []
    for iou in ious:
        if any(len(p) == 0 for p in proposals):
            result.append(0.0)  # published behaviour: one empty class zeroes the whole level
            continue
        aps = [average_precision(p, g, iou) for p, g in zip(proposals, gts, strict=True)]
        result.append(100.0 * float(np.mean(aps)))
    return result


def evaluate(
    snippet_scores: Sequence[np.ndarray],
    frame_gt: np.ndarray,
    snippet_posteriors: Sequence[np.ndarray],
    gt_segments: Sequence[Sequence[tuple[int, int]]],
    gt_labels: Sequence[Sequence[str]],
    classes: Sequence[str],
    ious: Sequence[float] = DEFAULT_IOUS,
) -> PaperMetrics:
    """Frame AUC/AP on ``snippet_scores`` plus detection mAP on ``snippet_posteriors``."""
    auc, ap = frame_auc_ap(snippet_scores, frame_gt)
    maps = detection_map(snippet_posteriors, gt_segments, gt_labels, classes, ious)
    return PaperMetrics(auc=auc, ap=ap, map_iou=list(ious), map=maps)
