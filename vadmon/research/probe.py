"""The ceiling a weakly supervised model can be judged against: a supervised linear probe.

A weakly supervised model that localises badly may have failed to learn, or may be reading
features that do not show the event at all. The two call for opposite fixes (change the recipe;
change the tower, crop or sampling). A logistic regression fitted on the *same* snippet features
with the *true* snippet labels separates them: if it localises well and the model does not, the
recipe failed; if neither does, the features cannot see the event.

The probe is cross-validated by video (no snippet of a video is scored by a probe that saw it)
on the evaluated set, stratified so every fold has anomalous snippets, and scored with the frame
AUC the model is scored with (snippet score repeated over its 16 frames, against frame ground
truth), so the two numbers are comparable.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedGroupKFold
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from vadmon.errors import VadmonError
from vadmon.research import metrics

FRAMES = metrics.FRAMES_PER_SNIPPET
MAX_FOLDS = 5
WEAK_FEATURES = 0.75  # a probe below this AUC: the features barely see the events
RECIPE_SHARE = 0.9  # a model below this share of the probe's AUC: the recipe fell short


@dataclass
class ProbeResult:
    auc: float
    ap: float
    folds: int
    snippets: int
    anomalous_snippets: int
    model_auc: float | None = None

    @property
    def share(self) -> float | None:
        """The model's frame AUC as a share of the probe's."""
        return None if self.model_auc is None else self.model_auc / self.auc

    def verdict(self) -> str:
        if self.auc < WEAK_FEATURES:
            return (
                "the features barely show these events (even a supervised probe reaches only "
                f"{self.auc:.2f}): change the tower, crop or frame sampling before the recipe"
            )
        share = self.share
        if share is None:
            return "no model AUC to compare"
        if share < RECIPE_SHARE:
            return (
                f"the model reaches {share:.0%} of what the features allow: the weakly "
                "supervised recipe fell short (labels, length balance, epochs, lr), not the "
                "features"
            )
        return f"the model reaches {share:.0%} of what the features allow"

    def to_dict(self) -> dict[str, object]:
        return {**asdict(self), "share": self.share, "verdict": self.verdict()}


def snippet_labels(frame_gt: np.ndarray, snippets: int) -> np.ndarray:
    """0/1 per snippet: anomalous when at least half of its 16 frames are."""
    frames = np.asarray(frame_gt[: snippets * FRAMES], dtype=np.float64)
    return (frames.reshape(snippets, FRAMES).mean(axis=1) >= 0.5).astype(np.int64)


def probe_scores(
    features: Sequence[np.ndarray], labels: Sequence[np.ndarray], seed: int = 0
) -> tuple[list[np.ndarray], int]:
    """Out-of-fold probe probabilities per video, and the number of folds used."""
    has_event = [bool(y.any()) for y in labels]
    folds = min(MAX_FOLDS, sum(has_event), len(labels) - sum(has_event) or MAX_FOLDS)
    if folds < 2:
        raise VadmonError(
            "the probe needs at least 2 videos with anomalous snippets in the ground truth",
            fix="evaluate on more annotated videos, or drop --probe",
        )
    x = np.concatenate([np.asarray(f, dtype=np.float64) for f in features])
    y = np.concatenate(labels)
    groups = np.concatenate([np.full(len(f), i) for i, f in enumerate(features)])
    out = np.zeros(len(y))
    splitter = StratifiedGroupKFold(n_splits=folds, shuffle=True, random_state=seed)
    for train_idx, test_idx in splitter.split(x, y, groups):
        if len(set(y[train_idx])) < 2:
            raise VadmonError(
                "a probe fold has no anomalous snippet to learn from",
                fix="evaluate on more annotated anomalous videos",
            )
        clf = make_pipeline(
            StandardScaler(),
            LogisticRegression(C=1.0, max_iter=2000, class_weight="balanced"),
        )
        clf.fit(x[train_idx], y[train_idx])
        out[test_idx] = clf.predict_proba(x[test_idx])[:, 1]
    bounds = np.cumsum([0] + [len(f) for f in features])
    return [out[a:b] for a, b in zip(bounds[:-1], bounds[1:], strict=True)], folds


def run_probe(
    features: Sequence[np.ndarray],
    frame_gt: np.ndarray,
    model_auc: float | None,
    seed: int = 0,
) -> tuple[ProbeResult, list[np.ndarray]]:
    """Fit and score the probe on ``features`` (one ``[T, D]`` array per video, in the order of
    ``frame_gt``, which holds ``16·ΣT`` frame labels)."""
    bounds = np.cumsum([0] + [FRAMES * len(f) for f in features])
    labels = [
        snippet_labels(frame_gt[a:b], len(f))
        for f, a, b in zip(features, bounds[:-1], bounds[1:], strict=True)
    ]
    scores, folds = probe_scores(features, labels, seed)
    auc, ap = metrics.frame_auc_ap(scores, frame_gt)
    y = np.concatenate(labels)
    result = ProbeResult(auc, ap, folds, int(len(y)), int(y.sum()), model_auc)
    return result, scores
