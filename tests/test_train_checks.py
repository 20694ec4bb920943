"""Checks before training (length imbalance, validation size, steps per epoch), the threads a run
uses, the batch prefetch, and the supervised probe that sets the ceiling for learning."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest
import torch

from tests import train_helpers as th
from vadmon.commands.train import parse_classes
from vadmon.errors import VadmonError
from vadmon.research import train_checks as tc
from vadmon.research import train_data as td
from vadmon.research.prefetch import prefetch
from vadmon.research.probe import run_probe
from vadmon.research.train import TrainOptions, train


def _videos(root: Path, lengths: dict[str, list[int]]) -> tuple[list[td.Video], list[bool]]:
    """Real feature files of the given snippet counts, labelled Normal/Event."""
    videos, normal = [], []
    for label, counts in lengths.items():
        for i, t in enumerate(counts):
            path = root / f"{label}{i}__0.npy"
            np.save(path, np.zeros((t, th.WIDTH), np.float32))
            videos.append(td.Video(f"{label}{i}", label, [path], [0]))
            normal.append(label == "Normal")
    return videos, normal


def test_length_imbalance_is_warned(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    same = rng.integers(40, 60, 20).tolist()
    videos, normal = _videos(tmp_path, {"Normal": same, "Event": rng.permutation(same).tolist()})
    assert tc.length_warning(videos, normal) is None
    longer = [int(t * 1.12) for t in rng.integers(40, 60, 20)]
    videos, normal = _videos(tmp_path, {"Normal": same, "Event": longer})
    warning = tc.length_warning(videos, normal)
    assert warning is not None and "anomalous training videos are" in warning
    assert "longer than normal ones" in warning and "--probe" in warning
    # The case: 9 % longer, not significant (p ≈ 0.2 with 20 a class), still learned.
    rng = np.random.default_rng(3)
    normal_len = rng.integers(30, 90, 20)
    event_len = (normal_len * 1.092).astype(int)[rng.permutation(20)]
    videos, normal = _videos(tmp_path, {"Normal": normal_len.tolist(), "Event": event_len.tolist()})
    warning = tc.length_warning(videos, normal)
    gap = event_len.mean() / normal_len.mean() - 1
    assert warning is not None and f"{gap:.0%} longer" in warning and "not significant" in warning


def test_small_validation_is_warned_with_a_size() -> None:
    assert tc.validation_warning(200, 200, [True] * 10 + [False] * 10) is None
    assert tc.validation_warning(200, 200, []) is None  # no validation: nothing to rank
    warning = tc.validation_warning(20, 20, [True, True, False, False])
    assert warning is not None and "2 normal + 2 anomalous" in warning
    assert "steps of 0.25" in warning and "--val-fraction 0.50" in warning
    tiny = tc.validation_warning(8, 8, [True, False])
    assert tiny is not None and "--val-fraction 0 " in tiny


def test_batches_shrink_to_give_enough_steps() -> None:
    samples = [td.Sample(Path(f"{i}.npy"), "x", i % 2 == 0) for i in range(400)]
    plan = tc.scale_batches(samples, 64, 64, 64, min_steps=8)
    assert (plan.batch_normal, plan.batch_anomaly) == (25, 25)
    assert plan.note is not None and "3 steps per epoch with batches of 64+64: using 25+25" in (
        plan.note
    )
    batches = td.epoch_batches(samples, 1, 0, plan.batch_size, plan.batch_normal, 25)
    assert len(batches) == 8
    kept = tc.scale_batches(samples, 64, 64, 64, min_steps=0)
    assert (kept.batch_normal, kept.note) == (64, None)
    shuffled = tc.scale_batches(samples, 96, 0, 0, min_steps=8)
    assert shuffled.batch_size == 50 and shuffled.batch_normal == 0
    big = tc.scale_batches(samples, 16, 0, 0, min_steps=8)  # 25 steps already
    assert big.batch_size == 16 and big.note is None


def test_training_threads_leave_a_core_for_the_loader() -> None:
    assert tc.training_threads(3) == 3
    assert tc.training_threads(None) == max(1, tc.usable_cores() - 1)
    with pytest.raises(VadmonError, match="--threads must be"):
        tc.training_threads(0)
    before = torch.get_num_threads()
    with tc.Threads(1) as n:
        assert n == 1 and torch.get_num_threads() == 1
    assert torch.get_num_threads() == before


def test_prefetch_keeps_order_raises_in_place_and_stops_early() -> None:
    assert list(prefetch(iter(range(50)), depth=3)) == list(range(50))

    def broken():
        yield 1
        yield 2
        raise VadmonError("cannot read feature file", "x__0.npy")

    got = []
    with pytest.raises(VadmonError, match="cannot read feature file"):
        for item in prefetch(broken(), depth=2):
            got.append(item)
    assert got == [1, 2]

    produced = []

    def endless():
        i = 0
        while True:
            produced.append(i)
            yield i
            i += 1

    for item in prefetch(endless(), depth=2):
        if item == 3:
            break
    alive = [t for t in threading.enumerate() if t.name == "vadmon-prefetch"]
    assert not alive and len(produced) <= 3 + 1 + 2 + 1  # bounded read-ahead, thread gone


def test_probe_separates_visible_events_from_invisible_ones(tmp_path: Path) -> None:
    videos = th.make_videos(16, seed=4, prefix="p")
    frame_gt = np.concatenate(
        [
            np.repeat(
                [1 if v.event and v.event[0] <= s < v.event[1] else 0 for s in range(v.snippets)],
                16,
            )
            for v in videos
        ]
    )
    result = {}
    for shift in (1.0, 0.0):
        listed = th.write_features(videos, tmp_path / f"s{shift}", crops=1, seed=5, shift=shift)
        feats = [np.load(v.paths[0]) for v in td.read_videos(listed)]
        result[shift], scores = run_probe(feats, frame_gt, model_auc=0.5)
        assert [len(s) for s in scores] == [v.snippets for v in videos]
    assert result[1.0].auc > 0.95 and result[1.0].folds == 5
    assert "fell short" in result[1.0].verdict()  # a model at 0.5 used little of it
    assert result[0.0].auc < 0.65 and "barely show these events" in result[0.0].verdict()


def _tiny_opts(listed: Path, root: Path, lines: list[str], **kw) -> TrainOptions:
    """One epoch of the UCF preset with the tiny random tower, logging into ``lines``."""
    return TrainOptions(
        train_list=listed,
        output=root / "m.pt",
        work_dir=root / "run",
        clip_arch="vadmon-tiny",
        clip_pretrained="",
        classes=parse_classes(th.CLASSES),
        visual_length=32,
        overrides={"epochs": 1},
        val_crop=0,
        device="cpu",
        log=lines.append,
        **kw,
    )


def test_train_states_steps_threads_and_warnings(tmp_path: Path) -> None:
    videos = th.make_videos(16, seed=6, prefix="w")
    for v in videos:  # anomalous videos twice as long: a shortcut waiting to be learned
        if v.event is not None:
            v.snippets *= 2
    listed = th.write_features(videos, tmp_path / "f", crops=1, seed=7)
    lines: list[str] = []
    assert train(_tiny_opts(listed, tmp_path, lines, val_fraction=0.25, threads=1)).finished
    text = "\n".join(lines)
    assert "anomalous training videos are" in text and "longer than normal ones" in text
    assert "warning: validation holds 2 normal + 2 anomalous videos" in text
    assert "12 samples give 1 steps per epoch with batches of 64+64: using 1+1" in text
    assert "(12 samples, 6 steps per epoch)" in text and "1 thread" in text
    assert "no features.json" in text  # synthetic features: said to be unchecked


def test_train_refuses_a_feature_width_before_training_starts(tmp_path: Path) -> None:
    """Features without a sidecar (published, other tools) still get their width checked
    before the first line about training is printed."""
    listed = th.write_features(th.make_videos(8, seed=1, prefix="x"), tmp_path / "f", 1, seed=2)
    for path in (tmp_path / "f").glob("*.npy"):
        np.save(path, np.load(path)[:, :32])
    lines: list[str] = []
    opts = _tiny_opts(listed, tmp_path, lines)
    with pytest.raises(VadmonError, match="features are 32-wide but the model's CLIP embeds 64"):
        train(opts)
    assert not any("training on" in line for line in lines) and not opts.work_dir.exists()
