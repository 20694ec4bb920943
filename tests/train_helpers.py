"""Synthetic weakly labelled feature datasets for the training tests (real .npy files + list CSVs).

Normal snippets are drawn around a shared background; an anomalous video has one contiguous
range of snippets drawn from a shifted distribution. Only the video label goes into the list
CSV; the ranges go into a separate segment CSV used for evaluation only.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np

WIDTH = 64  # vadmon-tiny's embedding width
CLASSES = "Normal=normal,Event=sudden event"


@dataclass
class SynthVideo:
    name: str
    label: str
    snippets: int
    event: tuple[int, int] | None  # snippet range [a, b)


def make_videos(count: int, seed: int, prefix: str) -> list[SynthVideo]:
    rng = np.random.default_rng(seed)
    videos = []
    for i in range(count):
        t = int(rng.integers(24, 90))
        if i % 2:
            length = int(rng.integers(max(3, t // 8), max(4, t // 3)))
            start = int(rng.integers(0, t - length))
            videos.append(SynthVideo(f"{prefix}ev{i:03d}", "Event", t, (start, start + length)))
        else:
            videos.append(SynthVideo(f"{prefix}no{i:03d}", "Normal", t, None))
    return videos


def write_features(
    videos: list[SynthVideo], out: Path, crops: int, seed: int, shift: float = 1.0
) -> Path:
    """``<name>__<k>.npy`` per crop and a list CSV; returns the list path."""
    rng = np.random.default_rng(seed)
    base = np.random.default_rng(1234).normal(0, 1, WIDTH).astype(np.float32)
    direction = np.random.default_rng(4321).normal(0, 1, WIDTH).astype(np.float32)
    direction /= np.linalg.norm(direction)
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    for v in videos:
        clean = base + rng.normal(0, 1.0, (v.snippets, WIDTH)).astype(np.float32)
        if v.event is not None:
            a, b = v.event
            clean[a:b] += shift * np.sqrt(WIDTH) * direction * 0.5
        for k in range(crops):
            noisy = clean + rng.normal(0, 0.1, clean.shape).astype(np.float32)
            path = out / f"{v.name}__{k}.npy"
            np.save(path, noisy.astype(np.float32))
            rows.append((str(path), v.label))
    list_path = out / "list.csv"
    with open(list_path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["path", "label"])
        w.writerows(rows)
    return list_path


def write_segment_csv(videos: list[SynthVideo], path: Path, frames_per_snippet: int = 16) -> Path:
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["video", "start_frame", "end_frame", "label"])
        for v in videos:
            if v.event is None:
                w.writerow([v.name, "", "", ""])
            else:
                a, b = v.event
                w.writerow([v.name, a * frames_per_snippet, b * frames_per_snippet, v.label])
    return path
