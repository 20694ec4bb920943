"""Whole frames over ZeroMQ: the baseline ``vadmon bench transport`` measures the ring against.

The monitor never sends pixels over sockets (frames stay in the shared-memory ring, see
``vadmon.runtime.ring``); this is the alternative it was measured against, kept here with the
bench so production transport code carries only what production uses.

``FramePool`` + ``send_frame`` send whole frames zero-copy and only reuse a buffer after libzmq
reports it released, so frames in flight are never overwritten.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np
import zmq

from vadmon.runtime.messages import (
    TOPICS,
    Message,
    MessageError,
    check_frame_shape,
    check_frames_payload,
)
from vadmon.runtime.transport import SendStats


@dataclass(frozen=True)
class FrameHeader(Message):
    """One frame, for ``vadmon bench transport`` only: written into a ring (ring mode) or sent
    whole (the zero-copy baseline). The monitor never sends per-frame headers."""

    topic: ClassVar[bytes] = b"frame"
    camera: str
    seq: int
    ts: float
    slot: int
    height: int
    width: int
    ring: str
    channels: int = 3
    fps: float = 0.0
    snippet_index: int = -1
    dtype: str = "uint8"

    def validate(self) -> None:
        check_frame_shape(self.height, self.width, self.channels)
        if self.slot < 0 or self.seq < 0:
            raise MessageError("negative slot or seq")
        if self.dtype != "uint8":
            raise MessageError(f"frame dtype {self.dtype[:16]!r} not supported (uint8 only)")

    def frame_bytes(self) -> int:
        return self.height * self.width * self.channels

    def check_payload(self, payload: bytes | None) -> None:
        """A whole frame sent over the socket (no ring) must be exactly h*w*c uint8 bytes."""
        check_frames_payload(payload, 1, self.height, self.width, self.channels)


FRAME_TOPICS = {**TOPICS, FrameHeader.topic: FrameHeader}  # what the bench's receivers decode


def frame_from_payload(header: FrameHeader, payload: bytes) -> np.ndarray:
    """View a whole-frame payload (already length-checked by ``decode``) as HxWxC uint8."""
    header.check_payload(payload)
    return np.frombuffer(payload, np.uint8).reshape(header.height, header.width, header.channels)


@dataclass
class FramePool:
    """Reusable frame buffers for zero-copy sends.

    libzmq keeps a reference to a zero-copy buffer until the bytes have left the process; the
    tracker says when. ``acquire`` only hands out buffers whose last send is done, and allocates
    (up to ``max_buffers``) or reports ``None`` (the caller drops the frame) otherwise.
    """

    shape: tuple[int, ...]
    max_buffers: int = 8
    _free: list[np.ndarray] = field(default_factory=list)
    _busy: list[tuple[np.ndarray, zmq.MessageTracker]] = field(default_factory=list)
    allocated: int = 0

    def acquire(self) -> np.ndarray | None:
        self._reap()
        if self._free:
            return self._free.pop()
        if self.allocated < self.max_buffers:
            self.allocated += 1
            return np.empty(self.shape, np.uint8)
        return None

    def release(self, buf: np.ndarray, tracker: zmq.MessageTracker | None) -> None:
        if tracker is None or tracker.done:
            self._free.append(buf)
        else:
            self._busy.append((buf, tracker))

    def _reap(self) -> None:
        still: list[tuple[np.ndarray, zmq.MessageTracker]] = []
        for buf, tracker in self._busy:
            if tracker.done:
                self._free.append(buf)
            else:
                still.append((buf, tracker))
        self._busy = still


def send_frame(
    sock: zmq.Socket,
    header: FrameHeader,
    frame: np.ndarray,
    pool: FramePool | None = None,
    stats: SendStats | None = None,
) -> bool:
    """Send a whole frame zero-copy (``copy=False``); the buffer goes back to ``pool`` tracked."""
    parts = [header.topic, header.header(), memoryview(np.ascontiguousarray(frame)).cast("B")]
    try:
        tracker = sock.send_multipart(parts, flags=zmq.NOBLOCK, copy=False, track=True)
    except zmq.Again:
        if stats is not None:
            stats.dropped += 1
        if pool is not None:
            pool.release(frame, None)
        return False
    if stats is not None:
        stats.sent += 1
    if pool is not None:
        pool.release(frame, tracker)
    return True
