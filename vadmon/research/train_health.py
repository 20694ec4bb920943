"""Training health: stop a run that has stopped learning, in one line with a hint.

Why: a run at too high a learning rate can saturate the C-Branch (every sigmoid at 0 or 1), after
which the MIL BCE sits at a clamped constant (50.0000 was seen from epoch 2 on) and every later
epoch is wasted; nothing said so. Three signs are unambiguous and cheap to watch per step:

- a loss term that is NaN or infinite;
- a loss term (``bce``, ``align`` or the total) constant to 4 decimals for ``CONSTANT_STEPS``
  optimizer steps in a row while not near 0 (random batches of a learning model never repeat
  a loss to 4 decimals; a perfectly fitted one sits at 0, which is not a failure);
- all C-Branch scores of a batch that holds normal and anomalous videos equal (saturated or
  collapsed heads rank nothing; a batch of normal videos alone may rightly score all ~0).

The state of the last finished epoch stays in the work dir; the error says how to retry.
"""

from __future__ import annotations

import math
from collections import deque

import torch

from vadmon.errors import VadmonError

CONSTANT_STEPS = 20
WATCHED = ("total", "bce", "align")
NEAR_ZERO = 1e-3
EQUAL_SPREAD = 1e-6  # max − min of a batch's sigmoid scores below this: all equal


def _hint(lr: float) -> str:
    return f"lower --lr (now {lr:g}; try {lr / 10:g}) and restart with a new --work-dir"


class HealthWatch:
    """Fed every step's loss terms and scores; raises ``VadmonError`` when training is dead."""

    def __init__(self, lr: float, where: str, steps: int = CONSTANT_STEPS) -> None:
        self.lr, self.where, self.steps = lr, where, steps
        self.recent: dict[str, deque[float]] = {k: deque(maxlen=steps) for k in WATCHED}

    def losses(self, terms: dict[str, float], epoch: int, step: int) -> None:
        at = f"epoch {epoch} step {step}"
        for key in WATCHED:
            value = terms[key]
            if not math.isfinite(value):
                raise VadmonError(
                    f"training diverged at {at}: the {key} loss is {value}", self.where,
                    _hint(self.lr),
                )  # fmt: skip
            seen = self.recent[key]
            seen.append(round(value, 4))
            if len(seen) == self.steps and len(set(seen)) == 1 and abs(seen[0]) > NEAR_ZERO:
                raise VadmonError(
                    f"training stopped learning at {at}: the {key} loss has been "
                    f"{seen[0]:.4f} for {self.steps} steps", self.where, _hint(self.lr),
                )  # fmt: skip

    def scores(
        self, logits1: torch.Tensor, lengths: torch.Tensor, labels: torch.Tensor, epoch: int
    ) -> None:
        """``logits1`` ``[B, L, 1]`` of a batch, ``labels`` ``[B, C]`` multi-hot (class 0
        normal); only each sample's valid rows count."""
        anomalous = labels[:, 1:].sum(dim=1) > 0
        if bool(anomalous.all()) or not bool(anomalous.any()):
            return
        probs = torch.sigmoid(logits1.detach().float().reshape(logits1.shape[0], -1))
        valid = torch.cat([probs[b, : int(n)] for b, n in enumerate(lengths)])
        if valid.numel() > 1 and float(valid.max() - valid.min()) < EQUAL_SPREAD:
            raise VadmonError(
                f"training collapsed in epoch {epoch}: every C-Branch score of a batch is "
                f"{float(valid[0]):.4f}", self.where, _hint(self.lr),
            )  # fmt: skip
