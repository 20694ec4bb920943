"""Synthetic surveillance-like videos: moving shapes on a noisy background; anomalous videos
show an event during a known frame range. Two kinds of event:

* ``flash``: a large flashing red block (a colour change any random tower embeds differently);
* ``dark``: no colour at all: the scene goes dark (the light drops to a quarter, flickering) and
  the camera shakes by a few pixels, as when the lights of a watched room are cut.

A second kind that is not colour lets the learnability tests tell a broken training recipe from
features that happen to see one kind of pixel change."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

SNIPPET = 16
SIZE = (96, 72)  # width, height


@dataclass
class SynthClip:
    path: Path
    name: str
    label: str
    frames: int
    event: tuple[int, int] | None  # frames [start, end), snippet aligned


EVENT_KINDS = ("flash", "dark")
FOLDERS = {"flash": "Flash", "dark": "Dark"}


def _frame(rng: np.random.Generator, shapes: list[dict], t: int, red: int | None) -> np.ndarray:
    w, h = SIZE
    img = np.full((h, w, 3), 90, np.uint8)
    img = cv2.add(img, rng.integers(0, 25, (h, w, 3), dtype=np.uint8))
    for s in shapes:
        x = int(s["x"] + s["vx"] * t) % w
        y = int(s["y"] + s["vy"] * t) % h
        cv2.circle(img, (x, y), s["r"], s["color"], -1)
    if red is not None:
        cv2.rectangle(img, (8, 6), (w - 8, h - 6), (0, 0, red), -1)  # BGR: saturated red
    return img


def _darken(rng: np.random.Generator, img: np.ndarray, t: int) -> np.ndarray:
    """Lights out: a quarter of the light (flickering ±), the camera shaking a few pixels."""
    gain = 0.25 + 0.08 * ((t // 2) % 2)
    dx, dy = (int(v) for v in rng.integers(-3, 4, 2))
    shaken = np.roll(img, (dy, dx), axis=(0, 1))
    return (shaken.astype(np.float32) * gain).astype(np.uint8)


def write_clip(
    path: Path,
    snippets: int,
    event: tuple[int, int] | None,
    seed: int,
    label: str,
    kind: str = "flash",
) -> SynthClip:
    """``event`` is a snippet range; the clip has ``snippets · 16`` frames."""
    rng = np.random.default_rng(seed)
    shapes = [
        {
            "x": float(rng.uniform(0, SIZE[0])),
            "y": float(rng.uniform(0, SIZE[1])),
            "vx": float(rng.uniform(-1.5, 1.5)),
            "vy": float(rng.uniform(-1.0, 1.0)),
            "r": int(rng.integers(4, 10)),
            "color": tuple(int(c) for c in rng.integers(40, 200, 3)),  # muted colours only
        }
        for _ in range(3)
    ]
    frames = snippets * SNIPPET
    span = None if event is None else (event[0] * SNIPPET, event[1] * SNIPPET)
    path.parent.mkdir(parents=True, exist_ok=True)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 16, SIZE)
    for t in range(frames):
        inside = span is not None and span[0] <= t < span[1]
        red = (255 if (t // 3) % 2 else 190) if inside and kind == "flash" else None
        img = _frame(rng, shapes, t, red)
        writer.write(_darken(rng, img, t) if inside and kind == "dark" else img)
    writer.release()
    return SynthClip(path, path.stem, label, frames, span)


def make_dataset(
    root: Path, count: int, seed: int, prefix: str, kind: str = "flash"
) -> list[SynthClip]:
    """Half normal (``Normal/``), half anomalous (``Flash/`` or ``Dark/``); labels come from the
    folder. Both halves draw their lengths from the same range, so length says nothing."""
    if kind not in EVENT_KINDS:
        raise ValueError(f"event kind must be one of {EVENT_KINDS}, got {kind!r}")
    rng = np.random.default_rng(seed)
    clips = []
    folder = FOLDERS[kind]
    for i in range(count):
        snippets = int(rng.integers(10, 20))
        if i % 2:
            length = int(rng.integers(2, max(3, snippets // 3)))
            start = int(rng.integers(1, snippets - length))
            name = f"{prefix}{kind}{i:03d}"
            clips.append(
                write_clip(
                    root / folder / f"{name}.avi",
                    snippets,
                    (start, start + length),
                    seed * 1000 + i,
                    folder,
                    kind,
                )  # fmt: skip
            )
        else:
            name = f"{prefix}normal{i:03d}"
            clips.append(
                write_clip(
                    root / "Normal" / f"{name}.avi", snippets, None, seed * 1000 + i, "Normal"
                )  # fmt: skip
            )
    return clips


def write_segment_csv(clips: list[SynthClip], path: Path) -> Path:
    lines = ["video,start_frame,end_frame,label"]
    for c in clips:
        lines.append(f"{c.name},{c.event[0]},{c.event[1]},{c.label}" if c.event else f"{c.name},,,")
    path.write_text("\n".join(lines) + "\n")
    return path
