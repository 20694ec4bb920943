"""Training data: list CSVs grouped by video, a leak-free validation split, and batch orders.

The published training lists hold one row per *crop file* (``name__0.npy`` … ``name__9.npy``),
and every crop is a separate training sample. Crops of one video are near-duplicates, so a
validation split must keep all crops of a video on the same side, or validation measures
memorisation. ``split_by_video`` does that, stratified by normal/anomalous so validation AUC is
defined, and seeded so a resumed run gets the same split.

Batch orders depend only on ``(seed, epoch)``: an interrupted run resumed at epoch ``e`` sees
exactly the batches an uninterrupted run would have seen, with no generator state to carry.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from vadmon.errors import VadmonError
from vadmon.model.config import load_preset
from vadmon.model.losses import multi_hot
from vadmon.model.sequence import check_features, uniform_resample
from vadmon.research.annotations import ListEntry, read_list_csv


@dataclass
class Video:
    """All crop files of one video and its weak (video-level) label."""

    name: str
    label: str
    paths: list[Path] = field(default_factory=list)
    crops: list[int | None] = field(default_factory=list)

    def path_for_crop(self, preferred: int | None, flag: str = "--crop") -> Path:
        """The file of crop ``preferred`` (validation/test score one crop, as published).

        Never a silent substitute: a video without that crop is an error naming the file that
        is missing. A video listed by one file is used as is when no crop is asked for, or when
        its name has no ``__<crop>`` suffix to check.
        """
        if preferred is not None and preferred in self.crops:
            return self.paths[self.crops.index(preferred)]
        if len(self.paths) == 1 and (preferred is None or self.crops == [None]):
            return self.paths[0]
        known = sorted(c for c in self.crops if c is not None)
        if preferred is None:
            raise VadmonError(
                f"video {self.name!r} is listed with crops {known}: which one to score is not set",
                str(self.paths[0]),
                f"pass {flag} (the UCF preset scores 5, XD 0)",
            )
        missing = self.paths[0].with_name(f"{self.name}__{preferred}.npy")
        raise VadmonError(
            f"crop {preferred} of video {self.name!r} is not in the list (crops {known}); "
            f"missing {missing}",
            str(self.paths[0].parent),
            f"extract it (vadmon extract --crop-mode 10crop) or pass {flag} {known[0]}",
        )


def resolve_crop(
    explicit: int | None, preset: str | None, meta: dict[str, Any]
) -> tuple[int | None, str]:
    """(crop, where it came from): ``--crop``, else the preset's test crop, else the crop the
    checkpoint was validated on, else none (a list with one file per video)."""
    if explicit is not None:
        return explicit, "--crop"
    if preset is not None and load_preset(preset).train.get("test_crop") is not None:
        return load_preset(preset).train["test_crop"], f"preset {preset} test crop"
    val_crop = (meta.get("hyper") or {}).get("val_crop")
    if val_crop is not None:
        return val_crop, "the checkpoint's validation crop"
    return None, "the only file listed per video"


def resolve_path(path: str, list_file: Path) -> Path:
    """Absolute paths as published; relative ones are taken relative to the list file."""
    p = Path(path)
    return p if p.is_absolute() else (list_file.parent / p)


def read_videos(list_file: Path) -> list[Video]:
    """Group list rows by video name, in order of first appearance."""
    list_file = Path(list_file)
    if not list_file.is_file():
        raise VadmonError("list file not found", str(list_file), "check the --*-list path")
    entries: list[ListEntry] = read_list_csv(list_file)
    if not entries:
        raise VadmonError("list file has no rows", str(list_file))
    videos: dict[str, Video] = {}
    for e in entries:
        v = videos.setdefault(e.video, Video(e.video, e.label))
        if v.label != e.label:
            raise VadmonError(
                f"video {e.video!r} has crops with different labels ({v.label!r}, {e.label!r})",
                str(list_file),
            )
        v.paths.append(resolve_path(e.path, list_file))
        v.crops.append(e.crop)
    return list(videos.values())


def check_labels(
    videos: Sequence[Video], label_map: dict[str, str], class_names: list[str]
) -> None:
    """Every video label must name at least one known class: a typo would silently train on 0s."""
    hot = multi_hot([v.label for v in videos], label_map, class_names)
    empty = [v for v, row in zip(videos, hot, strict=True) if row.sum() == 0]
    if empty:
        raise VadmonError(
            f"label {empty[0].label!r} of video {empty[0].name!r} matches no class "
            f"({len(empty)} videos affected)",
            fix=f"labels must use the keys {sorted(label_map)} (multi-labels joined with '-')",
        )


def is_normal(
    videos: Sequence[Video], label_map: dict[str, str], class_names: list[str]
) -> list[bool]:
    hot = multi_hot([v.label for v in videos], label_map, class_names)
    return [bool(row[0] > 0 and row[1:].sum() == 0) for row in hot]


def split_by_video(
    videos: Sequence[Video], normal: Sequence[bool], fraction: float, seed: int
) -> tuple[list[Video], list[Video]]:
    """(train, validation): ``fraction`` of the normal and of the anomalous videos held out.

    Whole videos move, never single crops. Each side of a stratum with at least two videos keeps
    at least one video, so both classes appear in validation whenever that is possible.
    """
    if not 0.0 <= fraction < 1.0:
        raise VadmonError(f"validation fraction must be in [0, 1), got {fraction}")
    rng = np.random.default_rng([seed, 7919])
    held: set[str] = set()
    for flag in (True, False):
        names = sorted(v.name for v, n in zip(videos, normal, strict=True) if n == flag)
        if fraction == 0.0 or len(names) < 2:
            continue
        count = min(len(names) - 1, max(1, round(fraction * len(names))))
        held.update(names[i] for i in rng.permutation(len(names))[:count])
    train = [v for v in videos if v.name not in held]
    val = [v for v in videos if v.name in held]
    return train, val


def load_feature_file(path: Path, width: int) -> np.ndarray:
    """A ``[T, width]`` float32 array; every way it can be wrong is one clear error."""
    if not path.is_file():
        raise VadmonError(
            "feature file not found", str(path), "re-run vadmon extract or fix the list"
        )
    try:
        arr = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        raise VadmonError(f"cannot read feature file ({str(exc)[:100]})", str(path)) from None
    if not isinstance(arr, np.ndarray) or arr.dtype.kind not in "fiu":
        raise VadmonError("feature file is not a numeric array", str(path))
    return check_features(arr, width, str(path))


@dataclass(frozen=True)
class Sample:
    """One training sample: one crop file of one video."""

    path: Path
    label: str
    normal: bool


def samples_of(videos: Sequence[Video], normal: Sequence[bool]) -> list[Sample]:
    return [Sample(p, v.label, n) for v, n in zip(videos, normal, strict=True) for p in v.paths]


def _chunks(order: np.ndarray, size: int) -> list[np.ndarray]:
    """Full batches only (as published with ``drop_last``), but never zero batches."""
    if len(order) <= size:
        return [order] if len(order) else []
    n = len(order) // size
    return [order[i * size : (i + 1) * size] for i in range(n)]


def epoch_batches(
    samples: Sequence[Sample],
    epoch: int,
    seed: int,
    batch_size: int,
    batch_normal: int = 0,
    batch_anomaly: int = 0,
) -> list[list[int]]:
    """Sample indices per step for ``epoch``; depends only on its arguments.

    With ``batch_normal``/``batch_anomaly`` > 0 (UCF), each step pairs a batch of normal samples
    with one of anomalous samples, shuffled separately, for as many steps as the shorter side
    allows. Otherwise (XD) one shuffled order is cut into batches of ``batch_size``.
    """
    rng = np.random.default_rng([seed, epoch])
    if batch_normal > 0 and batch_anomaly > 0:
        normal = np.array([i for i, s in enumerate(samples) if s.normal], dtype=np.int64)
        anomal = np.array([i for i, s in enumerate(samples) if not s.normal], dtype=np.int64)
        if not len(normal) or not len(anomal):
            raise VadmonError(
                "paired batches need normal and anomalous training videos",
                fix="check the list labels, or use --batch-normal 0 for one shuffled loader",
            )
        nb = _chunks(normal[rng.permutation(len(normal))], batch_normal)
        ab = _chunks(anomal[rng.permutation(len(anomal))], batch_anomaly)
        return [np.concatenate([n, a]).tolist() for n, a in zip(nb, ab, strict=False)]
    order = np.arange(len(samples))[rng.permutation(len(samples))]
    return [b.tolist() for b in _chunks(order, batch_size)]


@dataclass
class Batch:
    visual: torch.Tensor  # [B, L, D]
    lengths: torch.Tensor  # [B]
    labels: torch.Tensor  # [B, C] multi-hot


def make_batch(
    samples: Sequence[Sample],
    indices: Sequence[int],
    length: int,
    width: int,
    label_map: dict[str, str],
    class_names: list[str],
) -> Batch:
    """Load, pool/pad to ``length`` (published ``uniform_extract``) and stack."""
    feats, lengths = [], []
    for i in indices:
        arr, n = uniform_resample(load_feature_file(samples[i].path, width), length)
        feats.append(arr)
        lengths.append(n)
    labels = multi_hot([samples[i].label for i in indices], label_map, class_names)
    return Batch(
        torch.from_numpy(np.stack(feats)),
        torch.tensor(lengths, dtype=torch.long),
        labels,
    )


def iter_batches(
    samples: Sequence[Sample],
    batches: Sequence[Sequence[int]],
    length: int,
    width: int,
    label_map: dict[str, str],
    class_names: list[str],
) -> Iterator[Batch]:
    for idx in batches:
        yield make_batch(samples, idx, length, width, label_map, class_names)
