"""Where features came from: the ``features.json`` sidecar written by ``vadmon extract``.

A feature file is a bare ``[T, D]`` array. Nothing in it says which CLIP tower, weights, image
size, crop or frame sampling produced it, so features of one tower could be trained or scored
with another and give plausible-looking, meaningless numbers. ``vadmon extract`` therefore
writes the recipe beside the features; ``train``, ``eval`` and ``score`` find it (walking up from
each feature file) and refuse a mismatch in one line before any work.

Features without a sidecar (published features, other tools) are accepted unchecked: the
commands say so instead of guessing.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch

from vadmon import __version__
from vadmon.atomic import atomic_write_text
from vadmon.errors import VadmonError
from vadmon.research.train_state import tensor_checksum

SIDECAR = "features.json"
FORMAT = "vadmon-features"
VERSION = 1
# What must agree for two sets of features to be comparable (precision and the vadmon version
# are recorded for the reader, not compared: they change numbers by rounding only).
COMPATIBLE_KEYS = (
    "clip_arch",
    "clip_checksum",
    "embed_dim",
    "image_size",
    "mean",
    "std",
    "snippet_frames",
    "frames_per_snippet",
)


UNCHECKED = (
    "note: the features have no features.json (not written by vadmon extract): their tower, "
    "crops and sampling cannot be checked"
)


@dataclass(frozen=True)
class FeatureOrigin:
    """The recipe of a feature directory (one sidecar per ``vadmon extract`` output dir)."""

    clip_arch: str
    clip_pretrained: str | None  # tag or weights file as given; None = seeded random tower
    clip_checksum: str  # content hash of the CLIP weights (``clip_checksum``)
    embed_dim: int
    image_size: int
    mean: tuple[float, ...]
    std: tuple[float, ...]
    crop_mode: str
    crops: tuple[int, ...]
    snippet_frames: int
    frames_per_snippet: int
    frame_offsets: tuple[int, ...]
    precision: str = "fp32"
    vadmon_version: str = __version__
    path: Path | None = field(default=None, compare=False)  # where it was read from

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out.pop("path")
        return {"format": FORMAT, "version": VERSION, **out}

    @classmethod
    def from_dict(cls, obj: Mapping[str, Any], path: Path | None = None) -> FeatureOrigin:
        where = str(path) if path else "feature sidecar"
        if obj.get("format") != FORMAT or obj.get("version") != VERSION:
            raise VadmonError(
                "not a vadmon feature sidecar (format/version)", where, "re-run vadmon extract"
            )
        try:
            return cls(
                clip_arch=str(obj["clip_arch"]),
                clip_pretrained=obj["clip_pretrained"],
                clip_checksum=str(obj["clip_checksum"]),
                embed_dim=int(obj["embed_dim"]),
                image_size=int(obj["image_size"]),
                mean=tuple(float(x) for x in obj["mean"]),
                std=tuple(float(x) for x in obj["std"]),
                crop_mode=str(obj["crop_mode"]),
                crops=tuple(int(c) for c in obj["crops"]),
                snippet_frames=int(obj["snippet_frames"]),
                frames_per_snippet=int(obj["frames_per_snippet"]),
                frame_offsets=tuple(int(x) for x in obj["frame_offsets"]),
                precision=str(obj.get("precision", "fp32")),
                vadmon_version=str(obj.get("vadmon_version", "?")),
                path=path,
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise VadmonError(f"feature sidecar is incomplete ({exc})", where) from None

    def tower(self) -> str:
        weights = self.clip_pretrained or "random"
        return f"{self.clip_arch}/{weights} (weights {self.clip_checksum})"

    def differences(self, other: FeatureOrigin) -> list[str]:
        """The compatibility keys on which two origins differ."""
        return [k for k in COMPATIBLE_KEYS if getattr(self, k) != getattr(other, k)]


def clip_checksum(clip: torch.nn.Module) -> str:
    """Content hash of a CLIP's weights, independent of the module it sits in.

    Over the CLIP's own state-dict keys, so extraction (bare open_clip model) and training
    (``clipmodel.`` inside VadCLIP) hash the same weights to the same string; 8 significant
    digits, so summation order on another CPU does not change it.
    """
    return tensor_checksum(clip.state_dict(), digits=8)


def embed_width(clip: torch.nn.Module) -> int:
    """The width of a CLIP's joint embedding (what its features and VadCLIP's adapter share)."""
    proj = clip.text_projection
    return int(proj.out_features if isinstance(proj, torch.nn.Linear) else proj.shape[1])


def write_sidecar(out_dir: Path, origin: FeatureOrigin) -> Path:
    """Record ``origin`` in ``out_dir``; refuse (writing nothing) if the dir holds other features.

    Called before any video is decoded, so a re-run with another tower or sampling into an
    existing output dir stops before it mixes two kinds of features in one list.
    """
    path = Path(out_dir) / SIDECAR
    if path.is_file():
        old = read_sidecar(path)
        diff = old.differences(origin)
        if diff or old.crop_mode != origin.crop_mode:
            key = (diff or ["crop_mode"])[0]
            raise VadmonError(
                f"output dir holds features of another recipe ({key}: "
                f"{getattr(old, key)!r} there, {getattr(origin, key)!r} now)",
                str(path),
                "extract into a new --out directory (or delete the old features)",
            )
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, json.dumps(origin.to_dict(), indent=2) + "\n")
    return path


def read_sidecar(path: Path) -> FeatureOrigin:
    try:
        obj = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise VadmonError(f"cannot read feature sidecar ({exc})", str(path)) from None
    if not isinstance(obj, dict):
        raise VadmonError("feature sidecar is not a JSON object", str(path))
    return FeatureOrigin.from_dict(obj, Path(path))


class OriginFinder:
    """Finds the sidecar of feature files (nearest ``features.json`` above each file), cached."""

    def __init__(self) -> None:
        self._by_dir: dict[Path, Path | None] = {}
        self._origins: dict[Path, FeatureOrigin] = {}

    def _sidecar_of_dir(self, directory: Path) -> Path | None:
        chain: list[Path] = []
        found: Path | None = None
        for d in (directory, *directory.parents):
            if d in self._by_dir:
                found = self._by_dir[d]
                break
            chain.append(d)
            if (d / SIDECAR).is_file():
                found = d / SIDECAR
                break
        for d in chain:
            self._by_dir[d] = found
        return found

    def origin_of(self, feature_file: Path) -> FeatureOrigin | None:
        sidecar = self._sidecar_of_dir(Path(feature_file).resolve().parent)
        if sidecar is None:
            return None
        if sidecar not in self._origins:
            self._origins[sidecar] = read_sidecar(sidecar)
        return self._origins[sidecar]


def origin_of_files(files: Iterable[Path], what: str) -> FeatureOrigin | None:
    """The one origin of a set of feature files; mixed recipes are refused.

    ``None`` when no file has a sidecar. Files without one next to files with one are taken to
    share it (a list can point at features copied from elsewhere); the caller says so.
    """
    finder = OriginFinder()
    first: FeatureOrigin | None = None
    for f in files:
        origin = finder.origin_of(f)
        if origin is None:
            continue
        if first is None:
            first = origin
            continue
        diff = first.differences(origin)
        if diff:
            raise VadmonError(
                f"{what} mixes features of two recipes ({diff[0]}: {getattr(first, diff[0])!r} "
                f"in {first.path}, {getattr(origin, diff[0])!r} in {origin.path})",
                str(f),
                "extract all videos with the same tower and sampling",
            )
    return first


def check_same(reference: FeatureOrigin | None, other: FeatureOrigin | None, what: str) -> None:
    """Training and test features must come from the same recipe."""
    if reference is None or other is None:
        return
    diff = reference.differences(other)
    if diff:
        key = diff[0]
        raise VadmonError(
            f"{what} features differ from the training features ({key}: "
            f"{getattr(other, key)!r} vs {getattr(reference, key)!r})",
            str(other.path),
            "extract both sets with the same --clip-arch/--clip-pretrained and sampling",
        )


def check_tower(
    origin: FeatureOrigin | None,
    *,
    arch: str,
    width: int,
    checksum: str | None,
    where: str,
    fix: str,
) -> None:
    """The model's CLIP must be the tower that produced the features (arch, width, weights)."""
    if origin is None:
        return
    if arch != origin.clip_arch:
        raise VadmonError(
            f"features were extracted with CLIP {origin.clip_arch} ({origin.path}) but the model "
            f"uses {arch}",
            where,
            fix,
        )
    if width != origin.embed_dim:
        raise VadmonError(
            f"features are {origin.embed_dim}-wide ({origin.path}) but the model expects {width}",
            where,
            fix,
        )
    if checksum is not None and checksum != origin.clip_checksum:
        raise VadmonError(
            f"features were extracted with other CLIP weights ({origin.tower()}, "
            f"{origin.path}) than the model's ({arch}, weights {checksum})",
            where,
            fix,
        )


def check_checkpoint(ck: Any, files: Iterable[Path], where: str) -> dict[str, Any] | None:
    """Refuse features of another tower than a checkpoint's CLIP (arch, width, and weights when
    the checkpoint records the hash of the tower it was trained with), or of another sampling
    than its training features (frames per snippet: scores of a model trained on 1 sampled
    frame per snippet mean little on 8-frame means); returns their origin.

    ``ck`` is a ``vadmon.model.checkpoint.Checkpoint``. Imported published checkpoints carry no
    hash (their CLIP may be stored in another precision), so only arch and width are checked.
    """
    origin = origin_of_files(files, "the feature files")
    check_tower(
        origin,
        arch=ck.config.clip_arch,
        width=ck.config.visual_width,
        checksum=ck.meta.get("clip_checksum"),
        where=where,
        fix="use features extracted with the checkpoint's tower (vadmon extract --clip-arch "
        f"{ck.config.clip_arch} --clip-pretrained …)",
    )
    trained = ck.meta.get("features")
    if origin is not None and isinstance(trained, Mapping):
        check_same(FeatureOrigin.from_dict(trained), origin, "the scored")
    return origin.to_dict() if origin else None
