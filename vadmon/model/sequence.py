"""Fitting variable-length snippet sequences into the model's fixed length L.

Training pools long videos down to L segments (the published ``uniform_extract``); testing
splits into consecutive L-chunks, so every snippet keeps its own score.
"""

from __future__ import annotations

import numpy as np
import torch

from vadmon.errors import VadmonError


def check_features(features: np.ndarray, width: int, where: str = "") -> np.ndarray:
    if features.ndim != 2 or features.shape[1] != width or features.shape[0] == 0:
        raise VadmonError(
            f"feature array has shape {tuple(features.shape)}, expected [T, {width}] with T ≥ 1",
            where=where,
            fix="extract features with the same CLIP as the model (vadmon extract)",
        )
    if not np.isfinite(features).all():
        raise VadmonError("feature array contains NaN or inf", where=where)
    return features.astype(np.float32, copy=False)


def pad(features: np.ndarray, length: int) -> np.ndarray:
    n = features.shape[0]
    if n >= length:
        return features
    return np.pad(features, ((0, length - n), (0, 0)), mode="constant")


def uniform_resample(features: np.ndarray, length: int) -> tuple[np.ndarray, int]:
    """Average-pool into ``length`` segments (``linspace`` bounds cast to int) or zero-pad.

    Returns the array and the valid length, as the published training loader does.
    """
    n = features.shape[0]
    if n <= length:
        return pad(features, length), n
    bounds = np.linspace(0, n, length + 1, dtype=np.int32)
    out = np.zeros((length, features.shape[1]), dtype=np.float32)
    for i in range(length):
        a, b = bounds[i], bounds[i + 1]
        out[i] = features[a:b].mean(0) if a != b else features[a]
    return out, length


def split_chunks(features: np.ndarray, length: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Consecutive L-chunks, the last zero-padded; returns ``[N, L, D]`` and per-chunk lengths.

    As published, a video whose length is an exact multiple of L gets one extra empty chunk;
    its outputs are cut away, and chunks never influence each other.
    """
    n = features.shape[0]
    count = n // length + 1 if n >= length else 1
    padded = pad(features, count * length)
    chunks = torch.from_numpy(np.ascontiguousarray(padded[: count * length])).view(
        count, length, -1
    )
    lengths = torch.tensor(
        [max(0, min(length, n - i * length)) for i in range(count)], dtype=torch.long
    )
    return chunks, lengths
