"""The fidelity gate: a faster tower is kept only if it changes neither embeddings nor scores.

Checked on held-out frames (never the int8 calibration frames) against torch fp32: the smallest
cosine over the frames must reach ``cosine_min`` and the scorer's probabilities must move by at
most ``prob_max``. A failed gate is not an error: the caller falls back and logs the reason.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from vadmon.encoder.base import ImageEncoder

Probabilities = Callable[[torch.Tensor], torch.Tensor]


@dataclass(frozen=True)
class GateResult:
    passed: bool
    cosine_min: float
    prob_max_diff: float | None
    reason: str


def check(candidate: ImageEncoder, reference: torch.Tensor, held_out: torch.Tensor,
          cosine_min: float, prob_max: float, probs: Probabilities | None = None
          ) -> GateResult:  # fmt: skip
    """``reference`` = torch fp32 embeddings of ``held_out``."""
    with torch.inference_mode():
        got = candidate.encode(held_out).float()
        cos = float(F.cosine_similarity(got, reference.float(), dim=-1).min())
        diff = None
        if probs is not None:
            diff = float((probs(got) - probs(reference.float())).abs().max())
    where = f"{candidate.backend} {candidate.precision}"
    if cos < cosine_min:
        return GateResult(False, cos, diff, f"{where}: cosine {cos:.5f} < {cosine_min}")
    if diff is not None and diff > prob_max:
        return GateResult(False, cos, diff, f"{where}: probabilities moved {diff:.4f} > {prob_max}")
    shown = "" if diff is None else f", probabilities within {diff:.4f}"
    return GateResult(True, cos, diff, f"{where}: cosine {cos:.5f}{shown}")
