"""Checks run before training starts: which tower, which crops, and whether the data can rank
epochs or hand the model a shortcut.

Each check either refuses in one line (a mistake that makes the result meaningless: another CLIP
tower than the features', a missing scoring crop) or returns a warning (a property of the data
that makes the result fragile: lengths that differ between the classes, a validation split too
small to rank epochs). Warnings say what to change.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch
from scipy.stats import mannwhitneyu

from vadmon.errors import VadmonError
from vadmon.research import train_data as td
from vadmon.research.provenance import FeatureOrigin, check_same, origin_of_files

DEFAULT_ARCH, DEFAULT_PRETRAINED = "ViT-B-16", "openai"
MIN_VAL_PER_CLASS = 10  # below this, one video flips validation AUC by ≥ 1/10
# Relative gap of mean lengths worth a warning, whatever the p-value: a 9 % gap with 20 videos a
# class (p = 0.21) was learned as a shortcut in 3 of 4 runs (score-length r = 0.61-0.68).
LENGTH_GAP = 0.05


def resolve_tower(
    arch: str | None, pretrained: str | None, origin: FeatureOrigin | None
) -> tuple[str, str]:
    """(arch, pretrained) for training: what was asked, else what made the features, else
    ViT-B-16/openai. ``pretrained`` ``""`` is the seeded random tower."""
    if arch is None:
        arch = origin.clip_arch if origin else DEFAULT_ARCH
    if origin is not None and arch != origin.clip_arch:
        raise VadmonError(
            f"--clip-arch {arch} but the training features were extracted with {origin.clip_arch}",
            str(origin.path),
            "drop --clip-arch (train reads it from the features) or re-extract",
        )
    if pretrained is None:
        if origin is not None:
            pretrained = origin.clip_pretrained or ""
        else:
            pretrained = DEFAULT_PRETRAINED if arch == DEFAULT_ARCH else ""
    return arch, pretrained


def features_origin(
    videos: Sequence[td.Video], test_list: Path | None, crop: int | None
) -> FeatureOrigin | None:
    """The training features' origin; test features must share it and hold the scoring crop."""
    origin = origin_of_files([p for v in videos for p in v.paths], "the train list")
    if test_list is not None:
        files = check_crop_files(td.read_videos(test_list), crop, "--val-crop")
        check_same(origin, origin_of_files(files, "the test list"), "test")
    return origin


def check_crop_files(videos: Sequence[td.Video], crop: int | None, what: str) -> list[Path]:
    """The file each video is scored from; a missing crop is one error naming the file."""
    return [v.path_for_crop(crop, what) for v in videos]


def _snippets(video: td.Video) -> int:
    arr = np.load(video.paths[0], mmap_mode="r", allow_pickle=False)
    return int(arr.shape[0])


def length_warning(
    videos: Sequence[td.Video], normal: Sequence[bool], known: dict[str, int] | None = None
) -> str | None:
    """Anomalous and normal training videos of clearly different length let a model learn
    "long video → anomaly" (and "late snippet → anomaly") instead of the event. ``known``:
    snippet counts by video name, already read by ``list_check``."""
    known = known or {}
    lengths = np.array([known.get(v.name) or _snippets(v) for v in videos], dtype=np.float64)
    flags = np.asarray(normal, dtype=bool)
    norm, anom = lengths[flags], lengths[~flags]
    if len(norm) < 2 or len(anom) < 2:
        return None
    gap = anom.mean() / norm.mean() - 1.0
    if abs(gap) < LENGTH_GAP:
        return None
    p = float(mannwhitneyu(anom, norm).pvalue)
    side = "longer" if gap > 0 else "shorter"
    chance = "" if p < 0.05 else ", not significant with so few videos but big enough to learn"
    return (
        f"warning: anomalous training videos are {abs(gap):.0%} {side} than normal ones (mean "
        f"{anom.mean():.1f} vs {norm.mean():.1f} snippets, Mann-Whitney p={p:.3f}{chance}): the "
        "model can learn length or position instead of the event; balance the lengths, and "
        "check vadmon eval's length/position correlations and --probe"
    )


def validation_warning(n_normal: int, n_anomalous: int, val_normal: Sequence[bool]) -> str | None:
    """A validation split with few videos per class ranks epochs by noise."""
    vn = sum(1 for n in val_normal if n)
    va = len(val_normal) - vn
    if not val_normal or min(vn, va) >= MIN_VAL_PER_CLASS:
        return None
    step = 1.0 / max(1, vn * va)
    smaller = min(n_normal, n_anomalous)
    needed = MIN_VAL_PER_CLASS / smaller if smaller else 1.0
    if needed <= 0.5:
        fix = f"use --val-fraction {math.ceil(needed * 100) / 100:.2f} (≥ {MIN_VAL_PER_CLASS} per class)"
    else:
        fix = "too few videos to validate: use --val-fraction 0 (keeps the last epoch)"
    return (
        f"warning: validation holds {vn} normal + {va} anomalous videos, so its AUC moves in "
        f"steps of {step:.3g} and cannot rank epochs; {fix}"
    )


@dataclass(frozen=True)
class BatchPlan:
    batch_size: int
    batch_normal: int
    batch_anomaly: int
    note: str | None = None


def scale_batches(
    samples: Sequence[td.Sample],
    batch_size: int,
    batch_normal: int,
    batch_anomaly: int,
    min_steps: int,
) -> BatchPlan:
    """Shrink batches so an epoch has at least ``min_steps`` steps.

    The published batch sizes assume thousands of samples; on a small dataset they give one or
    two optimizer steps per epoch, so the epoch count (and the learning-rate milestones) stop
    meaning what the preset intends. ``min_steps`` 0 keeps the sizes as given.
    """
    plan = BatchPlan(batch_size, batch_normal, batch_anomaly)
    if min_steps <= 0:
        return plan
    if batch_normal > 0 and batch_anomaly > 0:
        n_norm = sum(1 for s in samples if s.normal)
        n_anom = len(samples) - n_norm
        steps = min(n_norm // batch_normal, n_anom // batch_anomaly)
        if steps >= min_steps:
            return plan
        bn, ba = max(1, n_norm // min_steps), max(1, n_anom // min_steps)
        bn, ba = min(bn, batch_normal), min(ba, batch_anomaly)
        old, new = f"{batch_normal}+{batch_anomaly}", f"{bn}+{ba}"
        plan = replace(plan, batch_normal=bn, batch_anomaly=ba)
    else:
        steps = len(samples) // batch_size
        if steps >= min_steps:
            return plan
        bs = min(batch_size, max(1, len(samples) // min_steps))
        old, new = str(batch_size), str(bs)
        plan = replace(plan, batch_size=bs)
    if old == new:
        return plan
    return replace(
        plan,
        note=f"{len(samples)} samples give {max(steps, 1)} steps per epoch with batches of "
        f"{old}: using {new} (≥ {min_steps} steps; --min-steps 0 keeps the batch sizes)",
    )


def usable_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def training_threads(requested: int | None) -> int:
    """Intra-op threads for training: the cores this process may use, less one for the
    data-loading thread. More threads than cores make OpenMP workers spin against each other
    (on 2 cores, a tiny-model epoch took 30× longer with 2 threads than with 1)."""
    if requested is not None:
        if requested < 1:
            raise VadmonError("--threads must be ≥ 1", "command line")
        return requested
    return max(1, usable_cores() - 1)


class Threads:
    """Sets torch's intra-op threads for the block and restores them afterwards."""

    def __init__(self, count: int) -> None:
        self.count, self.previous = count, torch.get_num_threads()

    def __enter__(self) -> int:
        torch.set_num_threads(self.count)
        return self.count

    def __exit__(self, *exc: object) -> None:
        torch.set_num_threads(self.previous)
