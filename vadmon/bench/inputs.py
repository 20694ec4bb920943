"""Benchmark inputs that look like camera images, so accuracy figures mean something.

Uniform noise is a poor stand-in: a random-weight ViT sees no structure in it, and bf16
rounding behaves differently on smooth images. Real frames from OpenCV's ``vtest.avi`` are used
when present; otherwise spatially smoothed noise (also correlated across colour channels).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from vadmon.model.clip_factory import ImageSpec

VTEST = Path("/usr/share/doc/opencv-doc/examples/data/vtest.avi")


def _video_frames(path: Path, count: int) -> list[np.ndarray]:
    import cv2

    cap = cv2.VideoCapture(str(path))
    try:
        total = int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) or count
        step = max(1, total // max(1, count))
        frames: list[np.ndarray] = []
        index = 0
        while len(frames) < count:
            ok, frame = cap.read()
            if not ok:
                break
            if index % step == 0:
                frames.append(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB))
            index += 1
        return frames
    finally:
        cap.release()


def _to_tensor(frames: list[np.ndarray], spec: ImageSpec) -> torch.Tensor:
    x = torch.from_numpy(np.stack(frames)).permute(0, 3, 1, 2).float() / 255.0
    h, w = x.shape[-2:]
    side = min(h, w)
    top, left = (h - side) // 2, (w - side) // 2
    x = x[:, :, top : top + side, left : left + side]
    x = F.interpolate(x, size=(spec.size, spec.size), mode="bilinear", antialias=True)
    mean = torch.tensor(spec.mean).view(1, 3, 1, 1)
    std = torch.tensor(spec.std).view(1, 3, 1, 1)
    return (x - mean) / std


def smooth_noise(count: int, spec: ImageSpec, seed: int = 0) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    coarse = torch.rand(count, 3, 8, 8, generator=gen) * 0.5
    coarse = coarse + torch.rand(count, 1, 8, 8, generator=gen) * 0.5
    x = F.interpolate(coarse, size=(spec.size, spec.size), mode="bicubic", align_corners=False)
    frames = (x.clamp(0, 1) * 255).byte().permute(0, 2, 3, 1).numpy()
    return _to_tensor(list(frames), spec)


def natural_images(count: int, spec: ImageSpec) -> tuple[torch.Tensor, str]:
    """``[count, 3, S, S]`` normalised images and a word on where they came from."""
    if VTEST.is_file():
        frames = _video_frames(VTEST, count)
        if len(frames) == count:
            return _to_tensor(frames, spec), f"{count} frames of {VTEST.name}"
    return smooth_noise(count, spec), f"{count} smoothed-noise images"
