"""The three weakly supervised training losses (video-level labels only)."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def topk_count(length: int) -> int:
    return int(length / 16 + 1)


def _topk_mean(values: torch.Tensor, length: int) -> torch.Tensor:
    """Mean of the top-k over the valid snippets (dim 0), k = int(len/16 + 1)."""
    top, _ = torch.topk(values[:length], k=topk_count(length), dim=0)
    return top.mean(0)


def mil_bce(logits1: torch.Tensor, labels: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """C-Branch MIL: the top-k mean anomaly probability should match 'video is not normal'."""
    probs = torch.sigmoid(logits1.squeeze(-1))
    video = torch.stack([_topk_mean(probs[i], int(n)) for i, n in enumerate(lengths.tolist())])
    target = 1.0 - labels[:, 0]
    return F.binary_cross_entropy(video, target.to(video.dtype))


def mil_align(logits2: torch.Tensor, labels: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """A-Branch MIL: per-class top-k mean alignment → cross-entropy with the normalised label."""
    video = torch.stack([_topk_mean(logits2[i], int(n)) for i, n in enumerate(lengths.tolist())])
    target = labels / labels.sum(dim=1, keepdim=True)
    return -(target * F.log_softmax(video, dim=1)).sum(dim=1).mean()


def text_separation(text_features: torch.Tensor) -> torch.Tensor:
    """Σ_{c≥1} |cos(t_normal, t_c)| (un-weighted): pushes anomaly prompts away from normal."""
    t = text_features / text_features.norm(dim=-1, keepdim=True)
    return (t[1:] @ t[0]).abs().sum()


def total_loss(
    logits1: torch.Tensor,
    logits2: torch.Tensor,
    text_features: torch.Tensor,
    labels: torch.Tensor,
    lengths: torch.Tensor,
    text_weight: float,
) -> dict[str, torch.Tensor]:
    """Sum of the three terms; the text term is divided by (C − 1) and weighted, as published."""
    bce = mil_bce(logits1, labels, lengths)
    align = mil_align(logits2, labels, lengths)
    sep = text_separation(text_features)
    text = sep / (text_features.shape[0] - 1) * text_weight
    return {"bce": bce, "align": align, "text": text, "text_sum": sep, "total": bce + align + text}


def multi_hot(
    video_labels: list[str], label_map: dict[str, str], class_names: list[str]
) -> torch.Tensor:
    """Label strings like ``B2-G-0`` → multi-hot over class names (unknown parts ignored)."""
    index = {name: i for i, name in enumerate(class_names)}
    out = torch.zeros(len(video_labels), len(class_names))
    for row, label in enumerate(video_labels):
        for part in label.split("-"):
            name = label_map.get(part)
            if name is not None and name in index:
                out[row, index[name]] = 1.0
    return out
