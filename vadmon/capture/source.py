"""Frame sources: files, network streams, webcams and a synthetic generator.

Every source follows the ``FrameSource`` protocol (open / read / close) and reports failures
as a ``SourceError`` with a classified ``ErrorKind`` (auth, timeout, not-found, refused, codec,
ended), so the watchdog and the dashboard can say *why* a camera is down. OpenCV does not
expose FFmpeg's reasons, so when a stream fails to open we ask the server ourselves (TCP
connect + an RTSP ``DESCRIBE`` / HTTP ``HEAD``) to classify the failure.

Source descriptions are always redacted: a URL's password never reaches a log line or repr.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol
from urllib.parse import parse_qsl

import cv2
import numpy as np

from vadmon.capture.probe import ErrorKind, SourceError, classify_stream_failure
from vadmon.config.camera import STREAM_SCHEMES  # the schemes config check accepts, exactly
from vadmon.redact import redact_url


class FrameSource(Protocol):
    description: str  # redacted, safe to log
    fps: float  # nominal frame rate (0 when unknown)

    def open(self) -> None: ...

    def read(self, out: np.ndarray | None = None) -> tuple[np.ndarray, float]:
        """The next frame; ``out`` is a spare buffer of the last frame's shape that the source
        may decode into (and return) instead of allocating a fresh one."""
        ...

    def close(self) -> None: ...


# --- synthetic ------------------------------------------------------------------------------


@dataclass
class SyntheticSource:
    """Moving shapes on a dark background; an optional red flash every ``flash_every_s``.

    Used by the offline demo and the tests: no camera, deterministic content, real-time pacing.
    ``frames`` > 0 ends the stream after that many frames. ``skew_s`` dates every frame that
    many seconds off this host's clock (a camera host whose clock runs ahead, for the tests).
    """

    width: int = 320
    height: int = 240
    fps: float = 10.0
    flash_every_s: float = 0.0
    flash_frames: int = 5
    frames: int = 0
    description: str = "synthetic"
    skew_s: float = 0.0

    def open(self) -> None:
        self._n = 0
        self._next_at = time.monotonic()

    def read(self, out: np.ndarray | None = None) -> tuple[np.ndarray, float]:
        if self.frames and self._n >= self.frames:
            raise SourceError(ErrorKind.ENDED, "synthetic source finished")
        _pace(self, self.fps)
        frame = self.render(self._n)
        self._n += 1
        return frame, time.time() + self.skew_s

    def render(self, n: int) -> np.ndarray:
        frame = np.full((self.height, self.width, 3), 30, np.uint8)
        t = n / max(self.fps, 1e-6)
        cx = int((0.5 + 0.4 * np.sin(t)) * self.width)
        cy = int((0.5 + 0.4 * np.cos(0.7 * t)) * self.height)
        cv2.circle(frame, (cx, cy), max(4, self.height // 10), (40, 200, 40), -1)
        x = int((n * 4) % max(1, self.width))
        cv2.rectangle(
            frame, (x, self.height // 4), (x + 20, self.height // 4 + 20), (200, 120, 0), -1
        )
        period = int(self.flash_every_s * self.fps)
        if period > 0 and n % period < self.flash_frames and n >= period:
            frame[:, :] = (0, 0, 255)
        return frame

    def close(self) -> None:
        pass


def _pace(src: SyntheticSource | FileSource, fps: float) -> None:
    """Sleep until the next frame is due; after a long hiccup, restart the clock (no burst)."""
    if fps <= 0:
        return
    now = time.monotonic()
    if src._next_at > now:
        time.sleep(src._next_at - now)
        src._next_at += 1.0 / fps
    else:
        src._next_at = max(src._next_at + 1.0 / fps, now - 1.0 / fps)


# --- OpenCV-backed sources ------------------------------------------------------------------


@dataclass
class FileSource:
    """A video file played in real time at its own fps (optionally looping)."""

    path: Path
    loop: bool = True
    realtime: bool = True
    fps: float = 0.0
    description: str = ""

    def __post_init__(self) -> None:
        self.description = self.description or f"file {self.path.name}"
        self._cap: cv2.VideoCapture | None = None

    def open(self) -> None:
        if not self.path.is_file():
            raise SourceError(ErrorKind.NOT_FOUND, f"no such file: {self.path}")
        cap = cv2.VideoCapture(str(self.path), cv2.CAP_FFMPEG)
        if not cap.isOpened():
            raise SourceError(ErrorKind.CODEC, f"cannot decode {self.path.name}")
        self._cap = cap
        self.fps = cap.get(cv2.CAP_PROP_FPS) or 0.0
        if not 0 < self.fps < 1000:
            self.fps = 25.0
        self._next_at = time.monotonic()
        self._frames = 0

    def read(self, out: np.ndarray | None = None) -> tuple[np.ndarray, float]:
        assert self._cap is not None, "open() first"
        ok, frame = self._cap.read(out)
        if not ok and self.loop and self._frames > 0:
            self._cap.set(cv2.CAP_PROP_POS_FRAMES, 0)
            ok, frame = self._cap.read(out)
        if not ok:
            kind = ErrorKind.ENDED if self._frames else ErrorKind.CODEC
            raise SourceError(kind, f"{self.path.name}: no more frames")
        self._frames += 1
        if self.realtime:
            _pace(self, self.fps)
        return frame, time.time()

    def close(self) -> None:
        if self._cap is not None:
            self._cap.release()
            self._cap = None


class _LiveCapture:
    """What a live OpenCV capture (stream or webcam) shares: adopt an opened capture, read with
    a timeout error, release."""

    description: str
    fps: float
    _cap: cv2.VideoCapture | None

    def _adopt(self, cap: cv2.VideoCapture) -> None:
        self._cap = cap
        fps = cap.get(cv2.CAP_PROP_FPS)
        self.fps = fps if 0 < fps < 1000 else 0.0

    def read(self, out: np.ndarray | None = None) -> tuple[np.ndarray, float]:
        assert self._cap is not None, "open() first"
        ok, frame = self._cap.read(out)  # into ``out`` when its shape fits: no fresh pages
        if not ok or frame is None:
            raise SourceError(
                ErrorKind.TIMEOUT, f"{self.description}: no frame within the read timeout"
            )
        return frame, time.time()

    def close(self) -> None:
        if self._cap is not None:
            self._cap.release()
            self._cap = None


@dataclass
class StreamSource(_LiveCapture):
    """RTSP/RTMP/HTTP via FFmpeg (RTSP over ``rtsp_transport``), with open and read timeouts."""

    url: str
    open_timeout_ms: int  # camera open_timeout_s / read_timeout_s / rtsp_transport
    read_timeout_ms: int
    rtsp_transport: str  # tcp | udp (RTSP lower transport)
    fps: float = 0.0  # what the stream says, once open

    def __post_init__(self) -> None:
        self.description = redact_url(self.url)
        self._cap: cv2.VideoCapture | None = None

    def __repr__(self) -> str:
        return f"StreamSource({self.description!r})"

    def open(self) -> None:
        # Read by the FFmpeg backend when it opens the stream; one camera per capture process,
        # so the process environment is this camera's.
        os.environ["OPENCV_FFMPEG_CAPTURE_OPTIONS"] = f"rtsp_transport;{self.rtsp_transport}"
        params = [
            cv2.CAP_PROP_OPEN_TIMEOUT_MSEC,
            self.open_timeout_ms,
            cv2.CAP_PROP_READ_TIMEOUT_MSEC,
            self.read_timeout_ms,
        ]
        cap = cv2.VideoCapture(self.url, cv2.CAP_FFMPEG, params)
        if not cap.isOpened():
            cap.release()
            kind, why = classify_stream_failure(self.url, self.open_timeout_ms / 1000)
            raise SourceError(kind, f"cannot open {self.description}: {why}")
        self._adopt(cap)


@dataclass
class WebcamSource(_LiveCapture):
    index: int
    fps: float = 0.0

    def __post_init__(self) -> None:
        self.description = f"webcam {self.index}"
        self._cap: cv2.VideoCapture | None = None

    def open(self) -> None:
        cap = cv2.VideoCapture(self.index)
        if not cap.isOpened():
            raise SourceError(ErrorKind.NOT_FOUND, f"no webcam at index {self.index}")
        self._adopt(cap)


# --- factory --------------------------------------------------------------------------------


def parse_synthetic(spec: str) -> SyntheticSource:
    """``synthetic:`` or ``synthetic:w=320&h=240&fps=10&flash=5&flash_len=5&frames=0&skew=0``.

    ``flash`` = seconds between red flashes, ``flash_len`` = frames each flash lasts, ``skew``
    = seconds the frames' timestamps run ahead of this host's clock."""
    _, _, query = spec.partition(":")
    opts = dict(parse_qsl(query.lstrip("?")))
    known = {"w", "h", "fps", "flash", "flash_len", "frames", "skew"}
    unknown = set(opts) - known
    if unknown:
        raise ValueError(f"unknown synthetic option(s) {sorted(unknown)}; known: {sorted(known)}")
    return SyntheticSource(
        width=int(opts.get("w", 320)),
        height=int(opts.get("h", 240)),
        fps=float(opts.get("fps", 10)),
        flash_every_s=float(opts.get("flash", 0)),
        flash_frames=int(opts.get("flash_len", 5)),
        frames=int(opts.get("frames", 0)),
        skew_s=float(opts.get("skew", 0)),
    )


def open_source(
    spec: str,
    *,
    loop: bool = True,
    realtime: bool = True,
    rtsp_transport: str = "tcp",
    open_timeout_ms: int = 10000,
    read_timeout_ms: int = 5000,
) -> FrameSource:
    """Build (not open) the source a spec names: URL, ``synthetic:…``, webcam index or file.
    The keyword defaults serve callers that only check or describe a spec (``vadmon config
    check``, the monitor's start-up check); capture passes every camera key (``build_source``)."""
    scheme = spec.split("://", 1)[0].lower() if "://" in spec else ""
    if scheme in STREAM_SCHEMES:
        return StreamSource(spec, open_timeout_ms, read_timeout_ms, rtsp_transport)
    if spec.startswith("synthetic"):
        return parse_synthetic(spec)
    if spec.isdigit() or spec.startswith("webcam:"):
        return WebcamSource(int(spec.rpartition(":")[2]))
    if scheme:
        raise ValueError(f"unsupported URL scheme {scheme!r}; use one of {STREAM_SCHEMES}")
    return FileSource(Path(spec), loop=loop, realtime=realtime)
