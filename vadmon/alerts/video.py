"""Encode an event's preview JPEGs into a clip that browsers, Home Assistant and chat apps play.

Why PyAV: OpenCV's wheels write only MPEG-4 Part 2 (``mp4v``), which no browser decodes.
PyAV's wheels bundle FFmpeg with libx264, libvpx and SVT-AV1, so H.264 in MP4 (the format every
player knows) needs no system package. The first available encoder of ``ENCODERS`` wins; a
build without libx264 falls back to VP9 in WebM.

Frames keep their capture timestamps (1 ms time base): previews may be decimated or irregular,
and a clip whose duration differs from the time it covers misleads whoever watches it.
The file is written under a temporary name and renamed, so a path in a webhook is whole.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Protocol

import cv2
import numpy as np

from vadmon.atomic import atomic_path

TIME_BASE = Fraction(1, 1000)


class TimedJpeg(Protocol):
    ts: float
    jpeg: bytes


@dataclass(frozen=True)
class Encoder:
    codec: str
    suffix: str  # container chosen by the file name
    options: dict[str, str]


# "faststart" puts the MP4 index first so a browser starts playing before the whole file loads.
ENCODERS = (
    Encoder("libx264", ".mp4", {"preset": "veryfast", "crf": "23"}),
    Encoder("libopenh264", ".mp4", {}),
    Encoder("libvpx-vp9", ".webm", {"crf": "32", "b": "0", "deadline": "realtime"}),
)
CONTAINER_OPTIONS = {".mp4": {"movflags": "+faststart"}, ".webm": {}}


@functools.cache
def pick_encoder() -> Encoder:
    """The first of ``ENCODERS`` this PyAV build can open; OSError when none can."""
    import av

    for enc in ENCODERS:
        try:
            av.Codec(enc.codec, "w")
        except Exception:  # av raises its own UnknownCodecError (a ValueError) per version
            continue
        return enc
    raise OSError(f"PyAV {av.__version__} has none of the encoders {[e.codec for e in ENCODERS]}")


def _images(frames: Sequence[TimedJpeg]) -> list[tuple[float, np.ndarray]]:
    """Decoded frames with strictly increasing timestamps, cropped to even sizes (yuv420p)."""
    out: list[tuple[float, np.ndarray]] = []
    for f in frames:
        img = cv2.imdecode(np.frombuffer(f.jpeg, np.uint8), cv2.IMREAD_COLOR)
        if img is None or (out and f.ts <= out[-1][0]):
            continue
        out.append((f.ts, img))
    if not out:
        return out
    h, w = out[0][1].shape[:2]
    h, w = h - h % 2, w - w % 2
    return [(ts, img[:h, :w] if img.shape[:2] >= (h, w) else cv2.resize(img, (w, h))[:h, :w])
            for ts, img in out]  # fmt: skip


def encode_clip(frames: Sequence[TimedJpeg], stem: Path, default_fps: float = 10.0) -> str | None:
    """Write ``frames`` to ``stem`` + the encoder's suffix (``.mp4``); the path, or None if
    no frame decodes.

    ``default_fps`` sets the last frame's length (and a single frame's) when no rate can be
    measured from the timestamps.
    """
    import av

    images = _images(frames)
    if len(images) < 1 or min(images[0][1].shape[:2]) < 2:
        return None
    enc = pick_encoder()
    path = Path(stem).parent / (Path(stem).name + enc.suffix)  # ids hold dots: no with_suffix
    h, w = images[0][1].shape[:2]
    t0 = images[0][0]
    span = images[-1][0] - t0
    rate = (len(images) - 1) / span if span > 0 else default_fps
    with atomic_path(path, suffix=enc.suffix) as tmp:
        container = av.open(str(tmp), "w", options=CONTAINER_OPTIONS[enc.suffix])
        try:
            stream = container.add_stream(enc.codec, rate=Fraction(rate).limit_denominator(1000))
            stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
            stream.time_base = TIME_BASE
            stream.codec_context.time_base = TIME_BASE
            stream.options = dict(enc.options)
            for ts, img in images:
                frame = av.VideoFrame.from_ndarray(img, format="bgr24")
                frame.pts = round((ts - t0) / TIME_BASE)
                frame.time_base = TIME_BASE
                container.mux(stream.encode(frame))
            container.mux(stream.encode(None))
        finally:
            container.close()
    return str(path)
