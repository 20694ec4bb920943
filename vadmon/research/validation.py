"""Model selection on the held-out validation videos (video labels only, never the test set).

The score is the video-level ROC-AUC of the C-Branch video score (mean of the top-k snippet
probabilities, k = int(T/16 + 1), the statistic the MIL loss trains) against the weak label;
ties are broken by the lower validation MIL-BCE.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from sklearn.metrics import roc_auc_score

from vadmon.model.losses import topk_count
from vadmon.model.predict import score_features
from vadmon.model.vadclip import VadCLIP
from vadmon.research import train_data as td


@torch.no_grad()
def video_scores(
    model: VadCLIP, videos: list[td.Video], crop: int | None
) -> tuple[np.ndarray, list[np.ndarray]]:
    """C-Branch video score (top-k mean of snippet probabilities) per video, and the snippets."""
    model.eval()
    text = model.encode_prompts(model.config.class_names)
    scores, per_snippet = [], []
    for v in videos:
        path = v.path_for_crop(crop, "--val-crop")
        feats = td.load_feature_file(path, model.config.visual_width)
        coarse = score_features(model, feats, text_features=text, where=str(path))["coarse"]
        k = topk_count(len(coarse))
        scores.append(float(np.sort(coarse)[::-1][:k].mean()))
        per_snippet.append(coarse)
    return np.asarray(scores), per_snippet


def validate(
    model: VadCLIP, videos: list[td.Video], normal: list[bool], crop: int | None
) -> dict[str, float]:
    scores, _ = video_scores(model, videos, crop)
    target = np.asarray([0.0 if n else 1.0 for n in normal])
    p = np.clip(scores, 1e-7, 1 - 1e-7)
    bce = float(-(target * np.log(p) + (1 - target) * np.log(1 - p)).mean())
    return {"video_auc": float(roc_auc_score(target, scores)), "bce": bce}


def better(val: dict[str, float], best: dict[str, Any] | None) -> bool:
    """Is this epoch's validation better than the best so far (AUC, then lower BCE)?"""
    if best is None:
        return True
    ref = best["validation"]
    if not ref:
        return True  # no validation: the latest epoch wins
    return (val["video_auc"], -val["bce"]) > (ref["video_auc"], -ref["bce"])
