"""Previews across the tcp link, so split-host events still get snapshots and clips.

On one host the alerts process subscribes to each capture's preview PUB. Across hosts the only
channel is the CURVE link that carries snippets, so the capture side also sends small preview
JPEGs on it, and the inference side republishes them to its alerts process.

Scores come first: a snippet is sent the moment it completes; previews wait in a bounded local
backlog and go out only while the link has room and no snippet was refused lately, a few per
loop turn. When the link is down the backlog keeps the last ``buffer_s`` seconds, so after a
reconnect the frames around an event still reach the clip, oldest first; anything older is
dropped and counted, never invented.
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass

import cv2
import numpy as np
import zmq

from vadmon.runtime.link import LinkPreviewSettings
from vadmon.runtime.messages import PreviewFrame
from vadmon.runtime.transport import send_message

BURST = 2  # previews sent per loop turn at most, so a backlog drains without crowding snippets
QUIET_AFTER_DROP_S = 2.0  # a refused snippet means congestion: hold previews back this long


def downscaled(frame: np.ndarray, max_width: int) -> np.ndarray:
    """``frame`` no wider than ``max_width`` (aspect kept); the frame itself when it already
    fits: OpenCV's same-size resize is a plain copy of ~0.7 MB per 640×360 preview."""
    height, width = frame.shape[:2]
    scale = min(1.0, max_width / width)
    size = (max(1, int(width * scale)), max(1, int(height * scale)))
    return frame if size == (width, height) else cv2.resize(frame, size)


@dataclass
class _Pending:
    msg: PreviewFrame
    jpeg: bytes


class LinkPreviews:
    """Rate-limited, downscaled previews queued for the link; ``flush`` sends what fits."""

    def __init__(self, camera: str, settings: LinkPreviewSettings) -> None:
        self.camera = camera
        self.s = settings
        self.backlog: deque[_Pending] = deque()
        self.last_offer = 0.0
        self.last_snippet_drop = -1e9
        self.counters = {"link_previews_sent": 0, "link_previews_dropped": 0,
                         "link_preview_bytes": 0, "link_snippet_bytes": 0}  # fmt: skip

    def offer(self, frame: np.ndarray, seq: int, ts: float, now: float) -> None:
        """Queue a preview of ``frame`` if one is due at ``fps``."""
        if self.s.fps <= 0 or now - self.last_offer < 1.0 / self.s.fps:
            return
        self.last_offer = now
        small = downscaled(frame, self.s.max_width)
        ok, jpeg = cv2.imencode(".jpg", small, [cv2.IMWRITE_JPEG_QUALITY, self.s.jpeg_quality])
        if not ok:
            return
        msg = PreviewFrame(self.camera, seq, ts, small.shape[0], small.shape[1])
        self.backlog.append(_Pending(msg, jpeg.tobytes()))

    def snippet_refused(self, now: float) -> None:
        self.last_snippet_drop = now

    def flush(self, sock: zmq.Socket, now: float) -> int:
        """Drop what is too old, then send the oldest previews while the link has room."""
        while self.backlog and self.backlog[0].msg.ts < time.time() - self.s.buffer_s:
            self.backlog.popleft()
            self.counters["link_previews_dropped"] += 1
        if now - self.last_snippet_drop < QUIET_AFTER_DROP_S:
            return 0
        sent = 0
        while self.backlog and sent < BURST and sock.poll(0, zmq.POLLOUT):
            item = self.backlog[0]
            if not send_message(sock, item.msg, item.jpeg):
                break
            self.backlog.popleft()
            sent += 1
            self.counters["link_previews_sent"] += 1
            self.counters["link_preview_bytes"] += len(item.jpeg) + len(item.msg.header())
        return sent
