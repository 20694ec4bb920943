"""Helpers shared by tests (moved from test_retention.py; test modules import only *_support modules)."""

from __future__ import annotations

import os
import time
from pathlib import Path

import cv2
import numpy as np

from vadmon.alerts.delivery import build_body, new_msg_id
from vadmon.alerts.outbox import Outbox
from vadmon.alerts.process import AlertPipeline
from vadmon.runtime.messages import PreviewFrame

DAY = 86400.0


T0 = 1_700_000_000.0


def jpeg(size: int, seed: int) -> bytes:
    """A real JPEG of roughly ``size`` bytes (noise compresses badly)."""
    side = max(16, int((size / 1.5) ** 0.5))
    img = np.random.default_rng(seed).integers(0, 256, (side, side, 3), dtype=np.uint8)
    ok, data = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, 90])
    assert ok
    return data.tobytes()


def stored(media: Path, camera: str, event_id: str, data: bytes, age_s: float) -> Path:
    """A media file of a past (closed) event, ``age_s`` old."""
    path = media / camera / f"{event_id}.jpg"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    then = time.time() - age_s
    os.utime(path, (then, then))
    return path


def previews(pipeline: AlertPipeline, n: int, size: int = 3000) -> None:
    for i in range(n):
        frame = PreviewFrame("lobby", i, T0 + i * 0.5, 48, 64)
        pipeline.on_message(frame.to_parts(jpeg(size, i)))


def closed_event(outbox: Outbox, i: int, when: float, pending: bool = False) -> None:
    ev = {"id": f"ev{i:04d}", "camera": "lobby", "start_ts": when, "pad": "x" * 2000}
    msg = new_msg_id()
    outbox.enqueue(ev, "end", msg, build_body("end", ev), ["h"], state="closed", now=when)
    if not pending:
        (row,) = outbox.deliveries(msg)
        outbox.mark_delivered(row, 1, when)
