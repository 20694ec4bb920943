"""Readers for evaluation annotations: the official UCF-Crime / XD-Violence files and a simple
per-video segment CSV for any other dataset.

Everything is converted to one in-memory shape so that ``vadmon.research.metrics`` needs no
dataset-specific code: per video, a list of half-open frame ranges ``[start, end)`` with one
label each. That is the convention of the published ``gt_segment*.npy`` files and of the
published frame-level ground truth (frames ``start … end−1`` are anomalous; verified against the
official fixtures).

Generic segment CSV (``read_segment_csv``), one row per anomalous segment::

    video,start_frame,end_frame,label
    shop_cam3_2024-05-01,120,480,Stealing
    shop_cam3_2024-05-01,900,1010,Vandalism
    parking_a,,,

``video`` is the feature file's video name (file stem without the ``__<crop>`` suffix),
``start_frame``/``end_frame`` are 0-based frame indices, end exclusive. A row with empty
start/end declares a video without anomalies (listing it is optional: videos missing from the
file are also treated as normal).
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from vadmon.errors import VadmonError

UCF_NORMAL = "Normal"
GT_NORMAL_LABEL = "A"  # label of whole-video normal segments in the published gt arrays


@dataclass(frozen=True)
class ListEntry:
    """One row of a feature list CSV (``path,label``)."""

    path: str
    label: str

    @property
    def video(self) -> str:
        """Video name: file stem without the ``__<crop>`` suffix (``Abuse028_x264``)."""
        stem = Path(self.path.replace("\\", "/")).name
        stem = stem[:-4] if stem.endswith(".npy") else stem
        return stem.rsplit("__", 1)[0] if "__" in stem else stem

    @property
    def crop(self) -> int | None:
        stem = Path(self.path.replace("\\", "/")).stem
        tail = stem.rsplit("__", 1)[-1] if "__" in stem else ""
        return int(tail) if tail.isdigit() else None


@dataclass
class VideoSegments:
    """Ground truth of one video: ``[start, end)`` frame ranges and their labels."""

    video: str
    segments: list[tuple[int, int]] = field(default_factory=list)
    labels: list[str] = field(default_factory=list)

    def frame_labels(
        self, num_frames: int, normal: Iterable[str] = (GT_NORMAL_LABEL,)
    ) -> np.ndarray:
        """0/1 per frame; segments whose label is in ``normal`` add nothing."""
        normal_set = set(normal)
        gt = np.zeros(num_frames, dtype=np.float32)
        for (start, end), label in zip(self.segments, self.labels, strict=True):
            if label not in normal_set:
                gt[max(start, 0) : max(end, 0)] = 1.0
        return gt


def _open_text(path: Path) -> str:
    try:
        return Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise VadmonError(
            f"cannot read annotation file ({exc.strerror})", str(path), "check the path"
        ) from exc


def read_list_csv(path: Path) -> list[ListEntry]:
    """A feature list CSV with header ``path,label`` (CRLF or LF line endings)."""
    text = _open_text(path)
    reader = csv.DictReader(text.splitlines())
    if reader.fieldnames is None or [f.strip() for f in reader.fieldnames][:2] != ["path", "label"]:
        raise VadmonError("list CSV must start with the header 'path,label'", str(path))
    entries = []
    for line, row in enumerate(reader, start=2):
        p, label = (row.get("path") or "").strip(), (row.get("label") or "").strip()
        if not p:
            raise VadmonError("empty path", f"{path}:{line}", "every row needs 'path,label'")
        entries.append(ListEntry(p, label))
    return entries


def split_multilabel(label: str, known: Iterable[str] | None = None) -> list[str]:
    """``'B2-G-0'`` → ``['B2', 'G']``: XD-Violence multi-labels; parts not in ``known`` dropped."""
    parts = [p for p in label.split("-") if p]
    if known is None:
        return [p for p in parts if p != "0"]
    known_set = set(known)
    return [p for p in parts if p in known_set]


def read_ucf_temporal(path: Path) -> dict[str, VideoSegments]:
    """``Temporal_Anomaly_Annotation.txt``: ``name class s1 e1 s2 e2`` (−1 = none).

    Normal videos get no segments. Keys are video names such as ``Abuse028_x264``.
    """
    out: dict[str, VideoSegments] = {}
    for line_no, line in enumerate(_open_text(path).splitlines(), start=1):
        fields = line.split()
        if not fields:
            continue
        if len(fields) != 6:
            raise VadmonError(
                f"expected 6 fields, got {len(fields)}",
                f"{path}:{line_no}",
                "name class s1 e1 s2 e2",
            )
        name, cls = fields[0], fields[1]
        try:
            nums = [int(x) for x in fields[2:]]
        except ValueError as exc:
            raise VadmonError("frame numbers must be integers", f"{path}:{line_no}") from exc
        vs = VideoSegments(name)
        for start, end in ((nums[0], nums[1]), (nums[2], nums[3])):
            if start >= 0 and end >= 0:
                vs.segments.append((start, end))
                vs.labels.append(cls)
        out[name] = vs
    return out


def _to_int(x: object) -> int:
    return int(float(str(x)))


def read_gt_arrays(
    segments_npy: Path, labels_npy: Path
) -> tuple[list[list[tuple[int, int]]], list[list[str]]]:
    """The published ``gt_segment*.npy`` / ``gt_label*.npy`` pair (object arrays, list order).

    Numbers are stored as strings in some entries and ints in others; all become ints.
    Pickle is needed by the file format; only load files you trust (these ship with the paper).
    """
    try:
        segs = np.load(segments_npy, allow_pickle=True)
        labs = np.load(labels_npy, allow_pickle=True)
    except (OSError, ValueError) as exc:
        raise VadmonError(
            f"cannot load ground-truth arrays ({exc})", f"{segments_npy}, {labels_npy}"
        ) from exc
    if len(segs) != len(labs):
        raise VadmonError(
            f"{len(segs)} segment entries but {len(labs)} label entries",
            f"{segments_npy}, {labels_npy}",
        )
    segments = [[(_to_int(s), _to_int(e)) for s, e in video] for video in segs]
    labels = [[str(x) for x in video] for video in labs]
    for i, (s, lab) in enumerate(zip(segments, labels, strict=True)):
        if len(s) != len(lab):
            raise VadmonError(
                f"video {i}: {len(s)} segments but {len(lab)} labels", str(segments_npy)
            )
    return segments, labels


def read_segment_csv(path: Path) -> dict[str, VideoSegments]:
    """The generic per-video segment CSV described in the module docstring."""
    text = _open_text(path)
    reader = csv.DictReader(text.splitlines())
    expected = ["video", "start_frame", "end_frame", "label"]
    if reader.fieldnames is None or [f.strip() for f in reader.fieldnames] != expected:
        raise VadmonError("segment CSV must have the header " + ",".join(expected), str(path))
    out: dict[str, VideoSegments] = {}
    for line, row in enumerate(reader, start=2):
        video = (row["video"] or "").strip()
        if not video:
            raise VadmonError("empty video name", f"{path}:{line}")
        vs = out.setdefault(video, VideoSegments(video))
        start, end = (row["start_frame"] or "").strip(), (row["end_frame"] or "").strip()
        if not start and not end:
            continue
        try:
            s, e = int(start), int(end)
        except ValueError as exc:
            raise VadmonError("start_frame/end_frame must be integers", f"{path}:{line}") from exc
        if s < 0 or e <= s:
            raise VadmonError(f"bad segment [{s}, {e})", f"{path}:{line}", "need 0 ≤ start < end")
        vs.segments.append((s, e))
        vs.labels.append((row["label"] or "").strip())
    return out


def gt_in_list_order(
    videos: Sequence[str],
    annotations: dict[str, VideoSegments],
    num_frames: Sequence[int],
    normal_label: str = GT_NORMAL_LABEL,
) -> tuple[list[list[tuple[int, int]]], list[list[str]]]:
    """Segments/labels aligned with a feature list, in the published gt-array convention.

    A video without anomalous segments gets one whole-video segment ``[0, num_frames)`` labelled
    ``normal_label`` (the published files do this with ``'A'``).
    """
    segments: list[list[tuple[int, int]]] = []
    labels: list[list[str]] = []
    for video, n in zip(videos, num_frames, strict=True):
        vs = annotations.get(video)
        if vs is None or not vs.segments:
            segments.append([(0, int(n))])
            labels.append([normal_label])
        else:
            segments.append(list(vs.segments))
            labels.append(list(vs.labels))
    return segments, labels


def frame_gt_in_list_order(
    videos: Sequence[str],
    annotations: dict[str, VideoSegments],
    num_frames: Sequence[int],
    normal: Iterable[str] = (GT_NORMAL_LABEL,),
) -> np.ndarray:
    """Concatenated 0/1 frame labels (``num_frames`` per video, usually ``16·T``)."""
    normal_set = tuple(normal)
    parts = [
        annotations.get(v, VideoSegments(v)).frame_labels(int(n), normal_set)
        for v, n in zip(videos, num_frames, strict=True)
    ]
    return np.concatenate(parts) if parts else np.zeros(0, dtype=np.float32)


def frame_gt_from_arrays(
    segments: Sequence[Sequence[tuple[int, int]]],
    labels: Sequence[Sequence[str]],
    num_frames: Sequence[int],
    normal: Iterable[str] = (GT_NORMAL_LABEL,),
) -> np.ndarray:
    """Concatenated 0/1 frame labels from gt arrays (as returned by ``read_gt_arrays``)."""
    normal_set = tuple(normal)
    parts = [
        VideoSegments("", list(s), list(lab)).frame_labels(int(n), normal_set)
        for s, lab, n in zip(segments, labels, num_frames, strict=True)
    ]
    return np.concatenate(parts) if parts else np.zeros(0, dtype=np.float32)
