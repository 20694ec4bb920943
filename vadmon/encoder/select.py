"""Config → the image encoder the inference process runs, behind the fidelity gate.

OpenVINO variants are built from the torch fp32 tower (converted once, cached), checked
against it on held-out frames and kept only if they pass; otherwise the monitor falls back to
torch fp32 and logs why. torch variants are the tower ``create_clip`` already cast.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from vadmon.encoder import calibration as calib
from vadmon.encoder import gate, openvino_backend
from vadmon.encoder.base import ImageEncoder
from vadmon.encoder.torch_backend import TorchEncoder
from vadmon.errors import VadmonError

log = logging.getLogger("vadmon.encoder")

Prepare = Callable[[list[np.ndarray]], torch.Tensor]


@dataclass
class Selection:
    """What was built and why (reported in the runtime string and the log)."""

    encoder: ImageEncoder
    gate: gate.GateResult | None = None
    fallback: str = ""
    calibration_source: str = ""
    notes: list[str] = field(default_factory=list)


def _split(frames: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Three quarters calibrate, the last quarter (other frames) is held out for the gate."""
    held = max(2, len(frames) // 4)
    return frames[:-held], frames[-held:]


def build_openvino(clip: torch.nn.Module, precision: str, cfg, prepare: Prepare,
                   cameras: list[str | int], probs: gate.Probabilities | None,
                   threads: int) -> Selection:  # fmt: skip
    """The OpenVINO tower in ``precision`` if it passes the gate, else torch fp32 (logged).

    ``clip`` must be the fp32 torch CLIP: it is both the conversion source and the fallback.
    """
    if not openvino_backend.available():
        raise VadmonError(
            "model.encoder.backend is openvino but the openvino package is not installed",
            "model.encoder.backend",
            "pip install openvino nncf (project dependencies), or use backend torch",
        )
    frames, source = calib.frames_for(cfg.calibration, cfg.calibration_frames, cameras)
    images = prepare(frames)
    calibrate, held_out = _split(images)
    size = int(images.shape[-1])
    cache_dir = Path(cfg.cache_dir) if cfg.cache_dir else openvino_backend.default_cache_dir()
    torch_fp32 = TorchEncoder(clip, "fp32")
    candidate = openvino_backend.cached(
        clip.visual, size, precision, threads, cache_dir, lambda: (calibrate, source)
    )
    reference = torch_fp32.encode(held_out)
    result = gate.check(candidate, reference, held_out, cfg.gate_cosine, cfg.gate_prob, probs)
    if result.passed:
        log.info("encoder openvino %s kept (gate on %d held-out frames: %s)",
                 precision, len(held_out), result.reason)  # fmt: skip
        return Selection(candidate, result, calibration_source=source)
    log.warning("encoder openvino %s failed the fidelity gate (%s); falling back to torch fp32",
                precision, result.reason)  # fmt: skip
    return Selection(torch_fp32, result, fallback=result.reason, calibration_source=source)
