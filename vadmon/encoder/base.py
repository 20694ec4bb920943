"""The one interface every image-tower backend implements (torch, OpenVINO, Triton)."""

from __future__ import annotations

from typing import Protocol

import torch


class ImageEncoder(Protocol):
    """Preprocessed images → CLIP image embeddings, wherever the tower runs.

    ``encode`` takes the float32 CPU batch ``[N, 3, H, W]`` that clip_factory's preprocessing
    produces and returns ``[N, D]`` float32 on the CPU, equal to ``encode_images`` of the
    local tower (not L2-normalised).
    """

    backend: str
    precision: str

    def encode(self, images: torch.Tensor) -> torch.Tensor: ...
