"""Frames for int8 calibration and the fidelity gate: the cameras themselves, or a known set.

Calibrating on the scenes the monitor will watch gives the quantiser the activation ranges it
will meet. A camera that cannot be read within the time budget (an RTSP server still starting,
a webcam in use) must not stop the monitor: the documented built-in set stands in, logged.
Frames are BGR uint8 like the capture process delivers; the caller preprocesses them.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path

import numpy as np

from vadmon.errors import VadmonError

log = logging.getLogger("vadmon.encoder.calibration")

VTEST = Path("/usr/share/doc/opencv-doc/examples/data/vtest.avi")
CAMERA_BUDGET_S = 15.0


def read_video(source: str | int, count: int) -> list[np.ndarray]:
    """Up to ``count`` BGR frames spread over the first ~``count``×8 frames of ``source``."""
    import cv2

    cap = cv2.VideoCapture(source)
    frames: list[np.ndarray] = []
    try:
        index = 0
        while cap.isOpened() and len(frames) < count and index < count * 8:
            ok, frame = cap.read()
            if not ok:
                break
            if index % 8 == 0 and frame is not None and frame.ndim == 3:
                frames.append(frame)
            index += 1
    finally:
        cap.release()
    return frames


def synthetic(count: int, size: int = 256, seed: int = 0) -> list[np.ndarray]:
    """Smooth coloured images (low-frequency noise, correlated channels): deterministic."""
    import cv2

    rng = np.random.default_rng(seed)
    out = []
    for _ in range(count):
        coarse = rng.random((6, 8, 3)) * 0.6 + rng.random((6, 8, 1)) * 0.4
        out.append((cv2.resize(coarse, (size * 4 // 3, size), cv2.INTER_CUBIC) * 255).clip(0, 255)
                   .astype(np.uint8))  # fmt: skip
    return out


def builtin(count: int) -> tuple[list[np.ndarray], str]:
    """The documented set: frames of OpenCV's vtest.avi (opencv-doc) when installed."""
    if VTEST.is_file():
        frames = read_video(str(VTEST), count)
        if len(frames) == count:
            return frames, f"builtin: {count} frames of {VTEST}"
    return synthetic(count), f"builtin: {count} synthetic images (vtest.avi not installed)"


def from_cameras(sources: list[str | int], count: int, budget_s: float = CAMERA_BUDGET_S
                 ) -> list[np.ndarray]:  # fmt: skip
    """Frames shared out over the cameras, each read in a thread bounded by ``budget_s``."""
    if not sources:
        return []
    share = max(1, -(-count // len(sources)))
    results: dict[int, list[np.ndarray]] = {}

    def read(i: int, source: str | int) -> None:
        results[i] = read_video(source, share)

    threads = [threading.Thread(target=read, args=(i, s), daemon=True)
               for i, s in enumerate(sources)]  # fmt: skip
    for t in threads:
        t.start()
    for t in threads:
        t.join(budget_s)
    frames = [f for i in sorted(results) for f in results[i]]
    return frames[:count]


def frames_for(calibration: str, count: int, cameras: list[str | int]
               ) -> tuple[list[np.ndarray], str]:  # fmt: skip
    """``model.encoder.calibration`` → (frames, where they came from)."""
    if calibration == "builtin":
        return builtin(count)
    if calibration == "cameras":
        frames = from_cameras(cameras, count)
        if len(frames) >= min(count, 8):
            return frames, f"cameras: {len(frames)} frames from {len(cameras)} camera(s)"
        log.warning("calibration: cameras gave %d frames; using the built-in set", len(frames))
        return builtin(count)
    path = Path(calibration).expanduser()
    frames = read_video(str(path), count) if path.is_file() else []
    if len(frames) < min(count, 8):
        raise VadmonError(
            f"calibration video {calibration!r} gave {len(frames)} frames (need {min(count, 8)})",
            "model.encoder.calibration",
            "point it at a readable video file, or use 'cameras' or 'builtin'",
        )
    return frames, f"{path.name}: {len(frames)} frames"
