"""The torch path: ``clip_factory.encode_images`` on the tower in its own precision."""

from __future__ import annotations

import torch

from vadmon.model.clip_factory import encode_images, image_dtype
from vadmon.model.precision import adapter_dtype


class TorchEncoder:
    """Wraps a built open_clip CLIP (tower already cast or quantised by ``create_clip``)."""

    backend = "torch"

    def __init__(self, clip: torch.nn.Module, precision: str | None = None) -> None:
        self.clip = clip
        self.precision = precision or _precision_of(clip)

    def encode(self, images: torch.Tensor) -> torch.Tensor:
        return encode_images(self.clip, images).cpu()


def _precision_of(clip: torch.nn.Module) -> str:
    if any("quantized" in type(m).__module__ for m in clip.visual.modules()):
        return "int8"
    dtype = image_dtype(clip)
    for name in ("fp32", "bf16", "fp16"):
        if adapter_dtype(name) == dtype:
            return name
    return str(dtype)
