"""Frame → crops → CLIP input tensors, following the recipe of the published VadCLIP features.

Each decoded frame is resized to 340×256 (width×height) with OpenCV's default bilinear filter and
converted BGR→RGB. Ten 224×224 crops are cut from it, in the published order (NOT torchvision's
``TenCrop`` order)::

    0 centre [16:240, 58:282]   1 top-left   2 top-right   3 bottom-left   4 bottom-right
    5–9 the same five, horizontally mirrored (so ``__5`` is the mirrored centre)

Each crop then goes through CLIP's own preprocessing: shortest-side resize to the model's image
size with bicubic interpolation, centre crop, scaling to [0, 1] and mean/std normalisation. Size,
mean, std and interpolation come from the open_clip model's preprocess config, so a model with
another input size or normalisation needs no code change. The resize is done on tensors in batch
(antialiased, rounded and clamped to the 0–255 grid as PIL's uint8 output would be); at the
usual 224 input it is skipped entirely, which is also what PIL does.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from open_clip.constants import OPENAI_DATASET_MEAN, OPENAI_DATASET_STD

FRAME_WIDTH, FRAME_HEIGHT = 340, 256
CROP = 224
# (top, left) of crops 0–4 in a 256×340 frame.
_BOXES: tuple[tuple[int, int], ...] = (
    ((FRAME_HEIGHT - CROP) // 2, (FRAME_WIDTH - CROP) // 2),  # centre → rows 16:240, cols 58:282
    (0, 0),
    (0, FRAME_WIDTH - CROP),
    (FRAME_HEIGHT - CROP, 0),
    (FRAME_HEIGHT - CROP, FRAME_WIDTH - CROP),
)
CROP_MODES: dict[str, tuple[int, ...]] = {"center": (0,), "10crop": tuple(range(10))}


def resize_frame(bgr: np.ndarray) -> np.ndarray:
    """BGR frame of any size → RGB uint8 ``[256, 340, 3]``."""
    resized = cv2.resize(bgr, (FRAME_WIDTH, FRAME_HEIGHT))
    return cv2.cvtColor(resized, cv2.COLOR_BGR2RGB)


def crop(rgb: np.ndarray, index: int) -> np.ndarray:
    """Crop ``index`` (0–9) of a resized ``[256, 340, 3]`` frame, as a ``[224, 224, 3]`` view."""
    if not 0 <= index < 10:
        raise ValueError(f"crop index must be 0..9, got {index}")
    top, left = _BOXES[index % 5]
    patch = rgb[top : top + CROP, left : left + CROP]
    return patch[:, ::-1] if index >= 5 else patch


def crops_of(bgr: np.ndarray, indices: Sequence[int]) -> np.ndarray:
    """Resize a BGR frame and return the requested crops stacked: ``[len(indices), 224, 224, 3]``."""
    rgb = resize_frame(bgr)
    return np.stack([crop(rgb, i) for i in indices])


def crop_indices(mode: str) -> tuple[int, ...]:
    try:
        return CROP_MODES[mode]
    except KeyError:
        raise ValueError(f"crop mode must be one of {sorted(CROP_MODES)}, got {mode!r}") from None


@dataclass(frozen=True)
class ClipPreprocess:
    """The parts of CLIP's image preprocessing that matter for crops that are already RGB."""

    size: int = CROP
    mean: tuple[float, float, float] = tuple(OPENAI_DATASET_MEAN)  # type: ignore[assignment]
    std: tuple[float, float, float] = tuple(OPENAI_DATASET_STD)  # type: ignore[assignment]
    interpolation: str = "bicubic"

    @classmethod
    def from_cfg(cls, cfg: Mapping[str, Any] | Any) -> ClipPreprocess:
        """From open_clip's preprocess config (a dict or ``PreprocessCfg``)."""
        get = cfg.get if isinstance(cfg, Mapping) else lambda k, d=None: getattr(cfg, k, d)
        size = get("size", CROP)
        if isinstance(size, Sequence):
            if len(set(size)) != 1:
                raise ValueError(f"only square CLIP inputs are supported, got {size}")
            size = size[0]
        return cls(
            size=int(size),
            mean=tuple(float(x) for x in get("mean", OPENAI_DATASET_MEAN)),  # type: ignore[arg-type]
            std=tuple(float(x) for x in get("std", OPENAI_DATASET_STD)),  # type: ignore[arg-type]
            interpolation=str(get("interpolation", "bicubic")),
        )

    def __call__(self, crops: np.ndarray) -> torch.Tensor:
        """uint8 ``[N, H, W, 3]`` RGB → normalised float32 ``[N, 3, size, size]``."""
        x = torch.from_numpy(np.ascontiguousarray(crops)).permute(0, 3, 1, 2).float()
        x = self._resize_center_crop(x)
        mean = torch.tensor(self.mean, dtype=torch.float32).view(1, 3, 1, 1)
        std = torch.tensor(self.std, dtype=torch.float32).view(1, 3, 1, 1)
        return ((x / 255.0) - mean) / std

    def _resize_center_crop(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        if min(h, w) != self.size:
            scale = self.size / min(h, w)
            new_h, new_w = max(self.size, round(h * scale)), max(self.size, round(w * scale))
            mode = "bicubic" if self.interpolation == "bicubic" else "bilinear"
            x = F.interpolate(
                x, size=(new_h, new_w), mode=mode, antialias=True, align_corners=False
            )
            x = x.round().clamp(0, 255)
            h, w = new_h, new_w
        top, left = (h - self.size) // 2, (w - self.size) // 2
        return x[..., top : top + self.size, left : left + self.size]
