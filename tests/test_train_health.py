"""Training health: NaN, a loss stuck to 4 decimals, or collapsed scores stop the run in one
line with a hint, and the last finished epoch stays resumable."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from tests import train_helpers as th
from vadmon.commands.train import parse_classes
from vadmon.errors import VadmonError
from vadmon.research import train_state as ts
from vadmon.research.train import TrainOptions, train
from vadmon.research.train_health import CONSTANT_STEPS, HealthWatch


def _terms(value: float) -> dict[str, float]:
    return {"total": value + 1.0, "bce": value, "align": 1.0 + 0.01 * value}


def test_a_loss_stuck_to_4_decimals_stops_a_varying_one_does_not() -> None:
    watch = HealthWatch(5e-4, "run")
    for step in range(3 * CONSTANT_STEPS):  # learning: the loss moves
        watch.losses(_terms(1.0 + 0.3 * math.sin(step)), 1, step)
    stuck = HealthWatch(5e-4, "run")
    for step in range(CONSTANT_STEPS - 1):  # 50.00001, 50.00002, … round to 50.0000
        stuck.losses(
            {"total": 51 + step * 1e-3, "bce": 50 + step * 1e-6, "align": 1 / (step + 1)}, 2, step
        )
    with pytest.raises(VadmonError, match="the bce loss has been 50.0000 for 20 steps") as exc:
        stuck.losses({"total": 60.0, "bce": 50.0, "align": 0.3}, 2, 99)
    assert "lower --lr (now 0.0005; try 5e-05)" in exc.value.fix
    fitted = HealthWatch(5e-4, "run")  # a perfect fit sits at 0: not a failure
    for step in range(2 * CONSTANT_STEPS):
        fitted.losses({"total": 0.0, "bce": 0.0, "align": 0.0}, 3, step)


def test_nan_and_collapsed_scores_stop() -> None:
    watch = HealthWatch(1.0, "run")
    with pytest.raises(VadmonError, match="epoch 4 step 7: the align loss is nan"):
        watch.losses({"total": 1.0, "bce": 1.0, "align": math.nan}, 4, 7)
    labels = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    lengths = torch.tensor([3, 2])
    logits = torch.full((2, 4, 1), 30.0)
    logits[1, 3] = -5.0  # a padded row does not count
    with pytest.raises(VadmonError, match="every C-Branch score of a batch is 1.0000"):
        watch.scores(logits, lengths, labels, 2)
    watch.scores(logits, lengths, labels[[0, 0]], 2)  # normal videos alone may all score alike
    logits[0, 1] = 0.0
    watch.scores(logits, lengths, labels, 2)  # scores differ: healthy


def test_training_at_a_diverging_lr_stops_in_one_line(tmp_path: Path) -> None:
    listed = th.write_features(th.make_videos(16, seed=5, prefix="d"), tmp_path / "f", 1, seed=6)
    lines: list[str] = []
    opts = TrainOptions(
        train_list=listed, output=tmp_path / "m.pt", work_dir=tmp_path / "run",
        clip_arch="vadmon-tiny", clip_pretrained="", classes=parse_classes(th.CLASSES),
        visual_length=32, val_fraction=0.0, val_crop=0, device="cpu", log=lines.append,
        threads=1, overrides={"epochs": 4, "lr": 1.0, "batch_normal": 1, "batch_anomaly": 1},
    )  # fmt: skip
    with pytest.raises(VadmonError, match="training collapsed in epoch 1") as exc:
        train(opts)
    assert "lower --lr (now 1; try 0.1)" in exc.value.line() and "\n" not in exc.value.line()
    assert not opts.output.exists() and ts.load_state(opts.work_dir) is None  # nothing half-written
