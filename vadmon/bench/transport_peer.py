"""The two processes of the ``transport`` benchmark: a capture-like sender and a receiver.

Sender modes, each moving the same BGR frames:

- ``ring``: the vadmon path. Write the frame into a ``CameraRing`` slot, publish a small
  ``FrameHeader``; the receiver copies the slot out with the ring's seqlock check.
- ``zmq``: the whole frame over ZeroMQ with ``send_frame`` (zero-copy, tracked, buffers from a
  ``FramePool``); the receiver decodes it (``decode`` copies the payload once).
- ``memcpy``: ``np.copyto`` into a private buffer, in the sender alone (the floor: one copy).

Both sides copy each frame exactly once, so the modes differ only in how the frame travels.
Phases are numbered in ``FrameHeader.snippet_index``: 0 warm-up, then per repeat one flat-out
phase (receiver-side frames/s) and one phase paced at ``--fps`` (sender CPU per frame). CPU is
``time.process_time()``: the process's user+system time over all its threads (ZeroMQ's I/O
thread included), the same counter as ``getrusage(RUSAGE_SELF)`` with ns resolution.

Run by ``vadmon.bench.transport``; prints one JSON line.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import asdict, dataclass, field

import numpy as np
import zmq

from vadmon.bench.zmq_frames import (
    FRAME_TOPICS,
    FrameHeader,
    FramePool,
    frame_from_payload,
    send_frame,
)
from vadmon.runtime.messages import MessageError, decode
from vadmon.runtime.ring import CameraRing, RingReader
from vadmon.runtime.transport import (
    RecvStats,
    SendStats,
    SocketLimits,
    close_socket,
    puller,
    pusher,
    send_message,
    send_parts,
)
from vadmon.runtime.zmq_context import close_process_context, process_context

CAMERA = "bench"
RING_SLOTS = 32  # the config's default ring_slots
SEND_WAIT_MS = 10_000
LIMITS = SocketLimits(hwm=8, linger_ms=5000)
DONE = b"bench-done"  # the sender's end-of-run sentinel: one topic part, not a vadmon message


@dataclass
class SendPhase:
    phase: int
    kind: str  # "max" | "paced"
    frames: int
    wall_s: float
    cpu_s: float


def source_frames(height: int, width: int, count: int = 4) -> list[np.ndarray]:
    """A few distinct frames, so no copy is served from a cache the previous one warmed."""
    rng = np.random.default_rng(0)
    return [rng.integers(0, 256, (height, width, 3), dtype=np.uint8) for _ in range(count)]


class Sender:
    """Moves one frame per ``send`` call in the chosen mode."""

    def __init__(self, mode: str, sock: zmq.Socket | None, height: int, width: int) -> None:
        self.mode = mode
        self.sock = sock
        self.frames = source_frames(height, width)
        self.shape = (height, width, 3)
        self.ring = CameraRing(CAMERA, slots=RING_SLOTS) if mode == "ring" else None
        self.pool = FramePool(self.shape) if mode == "zmq" else None
        self.dst = np.empty(self.shape, np.uint8) if mode == "memcpy" else None
        self.stats = SendStats()

    def send(self, seq: int, phase: int) -> None:
        src = self.frames[seq % len(self.frames)]
        src[0, 0, 0] = seq & 0xFF  # the receiver checks it: the right frame arrived
        if self.mode == "memcpy":
            np.copyto(self.dst, src)
            return
        ts = time.time()
        if self.ring is not None:
            name, slot = self.ring.write(src, seq, ts)
            header = self._header(seq, ts, phase, slot, name)
            self._writable()
            send_message(self.sock, header, stats=self.stats)
            return
        buf = self._buffer()
        np.copyto(buf, src)
        self._writable()
        send_frame(self.sock, self._header(seq, ts, phase, 0, ""), buf, self.pool, self.stats)

    def _header(self, seq: int, ts: float, phase: int, slot: int, ring: str) -> FrameHeader:
        h, w, c = self.shape
        return FrameHeader(CAMERA, seq, ts, slot, h, w, ring, c, 25.0, phase)

    def _buffer(self) -> np.ndarray:
        deadline = time.monotonic() + SEND_WAIT_MS / 1000
        while (buf := self.pool.acquire()) is None:  # all buffers still owned by libzmq
            if time.monotonic() > deadline:
                raise RuntimeError("no frame buffer released by libzmq")
            time.sleep(0.0002)
        return buf

    def _writable(self) -> None:
        """Wait for room in the pipe: flat-out phases measure the receiver's pace, no drops."""
        if not self.sock.poll(SEND_WAIT_MS, zmq.POLLOUT):
            raise RuntimeError("receiver stopped reading")

    def close(self) -> None:
        if self.ring is not None:
            self.ring.close()


def run_sender(args: argparse.Namespace) -> dict:
    ctx = process_context()
    sock = None if args.mode == "memcpy" else pusher(ctx, args.endpoint, limits=LIMITS)
    sender = Sender(args.mode, sock, args.height, args.width)
    phases: list[SendPhase] = []
    seq = 0
    try:
        for phase, kind, count in _plan(args):
            t0, c0 = time.perf_counter(), time.process_time()
            next_at = t0
            for _ in range(count):
                if kind == "paced":
                    next_at += 1 / args.fps
                    time.sleep(max(0.0, next_at - time.perf_counter()))
                seq += 1
                sender.send(seq, phase)
            phases.append(
                SendPhase(phase, kind, count, time.perf_counter() - t0, time.process_time() - c0)
            )
            if sock is not None:
                time.sleep(0.05)  # let the receiver drain before the next phase starts
        if sock is not None:
            sender._writable()
            send_parts(sock, [DONE, b"{}"])
    finally:
        sender.close()
        if sock is not None:
            close_socket(sock, args.endpoint)
    return {
        "mode": args.mode,
        "phases": [asdict(p) for p in phases],
        "dropped": sender.stats.dropped,
    }


def _plan(args: argparse.Namespace) -> list[tuple[int, str, int]]:
    plan = [(0, "warmup", args.warmup)]
    for r in range(args.repeats):
        plan += [(2 * r + 1, "max", args.frames), (2 * r + 2, "paced", args.paced)]
    return plan


@dataclass
class RecvPhase:
    frames: int = 0
    overwritten: int = 0
    wrong: int = 0
    first_t: float = 0.0
    last_t: float = 0.0

    def add(self, now: float) -> None:
        if not self.frames:
            self.first_t = now
        self.frames += 1
        self.last_t = now


@dataclass
class Receiver:
    mode: str
    phases: dict[int, RecvPhase] = field(default_factory=dict)
    readers: dict[str, RingReader] = field(default_factory=dict)
    buf: np.ndarray | None = None

    def on_frame(self, header: FrameHeader, payload: bytes | None) -> None:
        now = time.perf_counter()
        phase = self.phases.setdefault(header.snippet_index, RecvPhase())
        if self.mode == "ring":
            reader = self.readers.get(header.ring)
            if reader is None:
                reader = self.readers[header.ring] = RingReader(header.ring)
            frame = reader.read(header.slot, header.seq, self.buf)
            if frame is None:
                phase.overwritten += 1
                return
            self.buf = frame
        else:
            frame = frame_from_payload(header, payload or b"")  # decode already copied it
        if int(frame[0, 0, 0]) != header.seq & 0xFF:
            phase.wrong += 1
            return
        phase.add(now)

    def close(self) -> None:
        for reader in self.readers.values():
            reader.close()


def run_receiver(args: argparse.Namespace) -> dict:
    ctx = process_context()
    sock = puller(ctx, args.endpoint, limits=LIMITS)
    recv = Receiver(args.mode)
    stats = RecvStats()
    c0 = time.process_time()
    done = False
    deadline = time.monotonic() + args.timeout
    try:
        while not done and time.monotonic() < deadline:
            if not sock.poll(200):
                continue
            parts = sock.recv_multipart(copy=False)
            done = bytes(parts[0].buffer) == DONE
            try:
                msg, payload = (
                    (None, None) if done else decode([p.buffer for p in parts], FRAME_TOPICS)
                )
            except MessageError:
                stats.malformed += 1
                continue
            if isinstance(msg, FrameHeader):
                recv.on_frame(msg, payload)
    finally:
        recv.close()
        close_socket(sock)
    if not done:
        raise RuntimeError("no end-of-run message from the sender")
    return {
        "mode": args.mode,
        "cpu_s": time.process_time() - c0,
        "malformed": stats.malformed,
        "phases": {str(k): asdict(v) for k, v in sorted(recv.phases.items())},
    }


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m vadmon.bench.transport_peer")
    p.add_argument("role", choices=("sender", "receiver"))
    p.add_argument("--mode", choices=("ring", "zmq", "memcpy"), required=True)
    p.add_argument("--endpoint", default="")
    p.add_argument("--height", type=int, default=1080)
    p.add_argument("--width", type=int, default=1920)
    p.add_argument("--warmup", type=int, default=10)
    p.add_argument("--frames", type=int, default=100, help="frames per flat-out phase")
    p.add_argument("--paced", type=int, default=50, help="frames per paced phase")
    p.add_argument("--fps", type=float, default=25.0)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--timeout", type=float, default=300.0)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    run = run_sender if args.role == "sender" else run_receiver
    try:
        print(json.dumps(run(args)), flush=True)
    finally:
        close_process_context()
    return 0


if __name__ == "__main__":
    sys.exit(main())
