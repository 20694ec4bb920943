"""Which videos to extract, and their labels: input files/folders → ``VideoJob``s.

Kept apart from the extraction itself (``vadmon.research.extract``) because it is pure
bookkeeping: it reads no pixels, and its errors (missing input, two videos mapping to one
output, a video without a label) must all surface before any encoding starts.
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from vadmon.errors import VadmonError

VIDEO_EXTENSIONS = frozenset(
    {".mp4", ".avi", ".mkv", ".mov", ".webm", ".mpg", ".mpeg", ".m4v", ".wmv", ".flv", ".ts"}
)

LabelFn = Callable[[Path], str]


@dataclass(frozen=True)
class VideoJob:
    """One input video and where its features go (``rel_dir`` is relative to the output dir)."""

    source: Path
    rel_dir: Path
    name: str
    label: str

    def outputs(self, out_dir: Path, crops: Sequence[int]) -> list[Path]:
        return [out_dir / self.rel_dir / f"{self.name}__{c}.npy" for c in crops]


def label_from_parent(path: Path) -> str:
    """Default label: the parent folder name (``Abuse/Abuse001_x264.mp4`` → ``Abuse``)."""
    return path.parent.name


def label_mapping(csv_path: Path) -> LabelFn:
    """A label function from a CSV ``video,label`` (video = file stem, e.g. ``Abuse001_x264``)."""
    try:
        rows = list(csv.DictReader(csv_path.read_text(encoding="utf-8").splitlines()))
    except OSError as exc:
        raise VadmonError(f"cannot read label mapping ({exc.strerror})", str(csv_path)) from exc
    if not rows or not {"video", "label"} <= set(rows[0]):
        raise VadmonError("label mapping needs the header 'video,label'", str(csv_path))
    mapping = {r["video"].strip(): r["label"].strip() for r in rows}

    def label(path: Path) -> str:
        try:
            return mapping[path.stem]
        except KeyError:
            raise VadmonError(
                f"no label for video {path.stem!r}", str(csv_path), "add a row"
            ) from None

    return label


def find_videos(inputs: Sequence[Path]) -> list[tuple[Path, Path]]:
    """``(video file, relative output dir)`` for each input file or video inside an input dir."""
    found: list[tuple[Path, Path]] = []
    for inp in inputs:
        if inp.is_dir():
            for p in sorted(inp.rglob("*")):
                if p.is_file() and p.suffix.lower() in VIDEO_EXTENSIONS:
                    found.append((p, p.parent.relative_to(inp)))
        elif inp.is_file():
            found.append((inp, Path(".")))
        else:
            raise VadmonError("input not found", str(inp), "give video files or directories")
    return found


def plan_jobs(inputs: Sequence[Path], label_fn: LabelFn = label_from_parent) -> list[VideoJob]:
    jobs = [VideoJob(p, rel, p.stem, label_fn(p)) for p, rel in find_videos(inputs)]
    seen: dict[Path, Path] = {}
    for job in jobs:
        key = job.rel_dir / job.name
        if key in seen:
            raise VadmonError(
                f"two videos map to the same output {key}",
                f"{seen[key]} and {job.source}",
                "rename one or extract them into different output dirs",
            )
        seen[key] = job.source
    return jobs
