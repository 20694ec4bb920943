"""Weak supervision works: trained on video labels only, the model localises anomalous snippets
of held-out videos (frame AUC against segment ground truth it never saw)."""

from __future__ import annotations

from pathlib import Path

import torch

from tests import train_helpers as th
from vadmon.commands.train import parse_classes
from vadmon.model import checkpoint as ckpt_mod
from vadmon.research.evaluate import GroundTruthSource, evaluate_model
from vadmon.research.train import build_model, train
from vadmon.research.train_options import TrainOptions


def test_weak_labels_learn_frame_localisation(tmp_path: Path) -> None:
    train_videos = th.make_videos(40, seed=1, prefix="tr")
    test_videos = th.make_videos(16, seed=2, prefix="te")
    train_list = th.write_features(train_videos, tmp_path / "train", crops=2, seed=11)
    test_list = th.write_features(test_videos, tmp_path / "test", crops=1, seed=12)
    gt = GroundTruthSource(csv=th.write_segment_csv(test_videos, tmp_path / "gt.csv"))
    opts = TrainOptions(
        train_list=train_list,
        output=tmp_path / "model.pt",
        work_dir=tmp_path / "run",
        clip_arch="vadmon-tiny",
        clip_pretrained=None,
        classes=parse_classes(th.CLASSES),
        visual_length=64,
        overrides={
            "epochs": 6,
            "lr": 1e-3,
            "milestones": [100],
            "batch_normal": 8,
            "batch_anomaly": 8,
        },
        val_fraction=0.2,
        device="cpu",
        log=lambda _line: None,
    )

    # The same seeded model before training does not localise: the result comes from training.
    torch.manual_seed(234)
    untrained, label_map = build_model(opts)
    before = evaluate_model(untrained, test_list, label_map, gt)
    assert before.coarse is not None and before.coarse["auc"] < 0.9

    result = train(opts)
    assert result.finished and result.epochs_done == 6
    assert [h["epoch"] for h in result.history] == [1, 2, 3, 4, 5, 6]
    assert result.history[-1]["loss"]["bce"] < result.history[0]["loss"]["bce"]

    model = ckpt_mod.load_model(opts.output)
    after = evaluate_model(model, test_list, label_map, gt)
    assert after.coarse["auc"] >= 0.95, after.coarse
    assert after.video_auc is not None and after.video_auc >= 0.9
    # The A-Branch learns too (alignment with the "sudden event" prompt).
    assert after.fine["auc"] >= 0.9, after.fine
