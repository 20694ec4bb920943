"""The image-encoder interface every backend implements, and the tower's identity hash.

``encode`` takes exactly the preprocessed float32 CPU batch ``[N, 3, H, W]`` that
``vadmon.model.crops.ClipPreprocess`` produces and returns ``[N, D]`` float32 embeddings equal
(up to the backend's precision) to ``clip_factory.encode_images`` on the torch fp32 tower.
"""

from __future__ import annotations

import hashlib
from typing import Protocol, runtime_checkable

import torch
from torch import nn

BACKENDS = ("torch", "openvino", "triton")


@runtime_checkable
class ImageEncoder(Protocol):
    """A CLIP image tower behind some runtime."""

    backend: str  # "torch" | "openvino" | "triton"
    precision: str

    def encode(self, images: torch.Tensor) -> torch.Tensor:
        """Preprocessed ``[N, 3, H, W]`` float32 (CPU) → ``[N, D]`` float32 embeddings."""
        ...


def tower_hash(visual: nn.Module, as_fp32: bool = False) -> str:
    """sha256 of the tower's class, parameter names, shapes, dtypes and values: a converted
    model is reused only for exactly these weights. ``as_fp32``: the values as fp32, so the same
    weights hash alike whatever precision they are held in (the identity a Triton server's
    model is checked against)."""
    digest = hashlib.sha256(type(visual).__qualname__.encode())
    for name, tensor in sorted(visual.state_dict().items()):
        t = tensor.detach().cpu().contiguous()
        if as_fp32:
            t = t.to(torch.float32)
        digest.update(f"{name}|{t.dtype}|{tuple(t.shape)}".encode())
        if t.dtype == torch.bfloat16:
            t = t.view(torch.int16)
        digest.update(t.numpy().tobytes())
    return digest.hexdigest()
