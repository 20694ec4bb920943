"""Offline scoring with the published test protocol (split into visual_length chunks)."""

from __future__ import annotations

import numpy as np
import torch

from vadmon.model.sequence import check_features, split_chunks
from vadmon.model.vadclip import VadCLIP, probabilities


@torch.no_grad()
def score_features(
    model: VadCLIP,
    features: np.ndarray,
    text_features: torch.Tensor | None = None,
    class_names: list[str] | None = None,
    where: str = "",
) -> dict[str, np.ndarray]:
    """Per-snippet ``coarse`` [T], ``fine`` [T] and ``class_probs`` [T, C] for one video."""
    feats = check_features(np.asarray(features), model.config.visual_width, where)
    device = model.frame_position_embeddings.weight.device
    if text_features is None:
        text_features = model.encode_prompts(class_names or model.config.class_names)
    chunks, lengths = split_chunks(feats, model.config.visual_length)
    out = model(chunks.to(device), lengths, text_features.to(device))
    probs = probabilities(out)
    t = feats.shape[0]
    return {
        "coarse": probs["coarse"].reshape(-1)[:t].cpu().numpy(),
        "fine": probs["fine"].reshape(-1)[:t].cpu().numpy(),
        "class_probs": probs["class_probs"].reshape(-1, text_features.shape[0])[:t].cpu().numpy(),
    }
