"""Helpers shared by tests (moved from test_extract.py; test modules import only *_support modules)."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np


def read_frames(path: Path) -> list[np.ndarray]:
    cap = cv2.VideoCapture(str(path))
    frames = []
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        frames.append(frame)
    cap.release()
    return frames
