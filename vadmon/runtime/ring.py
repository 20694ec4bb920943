"""Per-camera shared-memory frame ring.

Pixels never travel over sockets: the capture process writes each frame into one of N slots of
a POSIX shared-memory segment and publishes only a small header (ring name, slot, seq). A reader
copies the slot and checks the slot's sequence number before and after the copy (a seqlock), so
a frame overwritten while being copied is detected instead of silently mixing two frames.

Segment layout::

    [ring header 64 B: magic, slots, slot_bytes]
    [slot 0 header 64 B: seq, ts, height, width, channels][slot 0 pixels: slot_bytes]
    [slot 1 header ...]

The slot's ``seq`` is the frame's sequence number, or ``WRITING`` while the writer copies pixels
in. Sequence numbers only increase, so "same seq before and after the copy" means "untouched".

Segment names start with a per-instance prefix (``VADMON_SHM_PREFIX``) so the supervisor's
janitor (``vadmon.runtime.cleanup``) can unlink segments left by a process that was SIGKILLed.
"""

from __future__ import annotations

import contextlib
import mmap
import os
import re
import secrets
import struct
import sys
from dataclasses import dataclass
from multiprocessing import shared_memory
from pathlib import Path

import numpy as np

RING_PREFIX = "vadmon-"
MAGIC = 0x5641444D52494E47  # "VADMRING"
WRITING = 2**64 - 1
RING_HEADER = struct.Struct("<QQQ")  # magic, slots, slot_bytes
SLOT_HEADER = struct.Struct("<QdIII")  # seq, ts, height, width, channels
HEADER_BYTES = 64
SHM_DIR = Path("/dev/shm")


class RingError(RuntimeError):
    """The named segment is missing or is not a vadmon ring."""


@dataclass(frozen=True)
class SlotInfo:
    seq: int
    ts: float
    height: int
    width: int
    channels: int


def _segment_name(camera: str) -> str:
    safe = re.sub(r"[^A-Za-z0-9_]", "_", camera)[:20] or "cam"
    # a supervised monitor sets its instance prefix so its janitor can find leaked segments
    prefix = os.environ.get("VADMON_SHM_PREFIX", RING_PREFIX)
    return f"{prefix}{os.getpid()}-{safe}-{secrets.token_hex(3)}"


def _slot_offset(slot: int, slot_bytes: int) -> int:
    return HEADER_BYTES + slot * (HEADER_BYTES + slot_bytes)


class RingWriter:
    """Owns one segment; recreated under a new name when a frame no longer fits."""

    def __init__(self, camera: str, slots: int, slot_bytes: int) -> None:
        if slots < 2 or slot_bytes < 1:
            raise ValueError("a ring needs at least 2 slots of at least 1 byte")
        self.camera = camera
        self.slots = slots
        self.slot_bytes = slot_bytes
        size = _slot_offset(slots, slot_bytes)
        self._shm = shared_memory.SharedMemory(name=_segment_name(camera), create=True, size=size)
        self._buf = self._shm.buf
        RING_HEADER.pack_into(self._buf, 0, MAGIC, slots, slot_bytes)
        for slot in range(slots):
            SLOT_HEADER.pack_into(self._buf, _slot_offset(slot, slot_bytes), WRITING, 0.0, 0, 0, 0)
        self._next = 0

    @property
    def name(self) -> str:
        return self._shm.name

    def fits(self, frame: np.ndarray) -> bool:
        return frame.nbytes <= self.slot_bytes

    def write(self, frame: np.ndarray, seq: int, ts: float) -> int:
        """Copy ``frame`` (uint8, HxW or HxWxC) into the next slot; returns the slot index."""
        if frame.dtype != np.uint8 or frame.ndim not in (2, 3):
            raise ValueError("ring frames must be uint8 HxW or HxWxC arrays")
        if not self.fits(frame):
            raise ValueError(f"frame of {frame.nbytes} bytes exceeds slot of {self.slot_bytes}")
        height, width = frame.shape[:2]
        channels = 1 if frame.ndim == 2 else frame.shape[2]
        slot = self._next
        self._next = (slot + 1) % self.slots
        off = _slot_offset(slot, self.slot_bytes)
        # Mark the slot as being written first: a reader that saw the old seq will see a change.
        struct.pack_into("<Q", self._buf, off, WRITING)
        dst = np.ndarray((frame.nbytes,), np.uint8, self._buf, off + HEADER_BYTES)
        dst[:] = np.ascontiguousarray(frame).reshape(-1)
        SLOT_HEADER.pack_into(self._buf, off, WRITING, ts, height, width, channels)
        struct.pack_into("<Q", self._buf, off, seq)
        return slot

    def close(self) -> None:
        """Unmap and unlink; readers that still have it mapped keep their mapping."""
        if self._shm is None:
            return
        self._buf = None
        self._shm.close()
        with contextlib.suppress(FileNotFoundError):
            self._shm.unlink()
        self._shm = None  # type: ignore[assignment]

    def __enter__(self) -> RingWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class CameraRing:
    """The capture side's ring: writes frames, recreating the segment when a frame is larger.

    A resolution change to a bigger frame gets a fresh segment with a new name; headers carry
    the name, so readers simply attach to the new one. The old one is unlinked at once.
    """

    def __init__(self, camera: str, slots: int) -> None:  # slots: camera ring_slots
        self.camera = camera
        self.slots = slots
        self.writer: RingWriter | None = None
        self.recreated = 0

    @property
    def name(self) -> str:
        return self.writer.name if self.writer else ""

    def prepare(self, frame: np.ndarray) -> str:
        """The name ``frame`` will be written under (a new segment when it does not fit)."""
        if self.writer is None or not self.writer.fits(frame):
            if self.writer is not None:
                self.writer.close()
                self.recreated += 1
            self.writer = RingWriter(self.camera, self.slots, frame.nbytes)
        return self.writer.name

    def write(self, frame: np.ndarray, seq: int, ts: float) -> tuple[str, int]:
        name = self.prepare(frame)
        return name, self.writer.write(frame, seq, ts)  # type: ignore[union-attr]

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None


def _attach_untracked(name: str) -> tuple[mmap.mmap, int]:
    """Map an existing segment without telling the resource tracker.

    Python < 3.13 registers every attached segment with the resource tracker, which then
    unlinks the *writer's* segment when the reader exits (and warns about a "leak"). Mapping it
    directly avoids that; the writer alone owns the segment's lifetime.
    """
    if sys.version_info >= (3, 13):  # pragma: no cover - newer Pythons have track=False
        shm = shared_memory.SharedMemory(name=name, track=False)
        fd = os.dup(shm._fd)  # noqa: SLF001
        shm.close()
    else:
        import _posixshmem  # CPython's own shm_open binding, as used by shared_memory

        fd = _posixshmem.shm_open("/" + name, os.O_RDONLY, mode=0o600)
    try:
        size = os.fstat(fd).st_size
        return mmap.mmap(fd, size, prot=mmap.PROT_READ), size
    finally:
        os.close(fd)


class RingReader:
    """Attaches to a ring by name and copies frames out, detecting overwrites."""

    def __init__(self, name: str) -> None:
        if not name.startswith(RING_PREFIX) or "/" in name:
            raise RingError(f"not a vadmon ring name: {name[:64]!r}")
        try:
            self._map, size = _attach_untracked(name)
        except (FileNotFoundError, PermissionError, OSError) as exc:
            raise RingError(f"cannot attach ring {name!r}: {exc.strerror or exc}") from None
        if size < HEADER_BYTES:
            self._map.close()
            raise RingError(f"ring {name!r} too small")
        magic, self.slots, self.slot_bytes = RING_HEADER.unpack_from(self._map, 0)
        if magic != MAGIC or size < _slot_offset(self.slots, self.slot_bytes):
            self._map.close()
            raise RingError(f"segment {name!r} is not a vadmon ring")
        self.name = name
        self.overwritten = 0

    def info(self, slot: int) -> SlotInfo:
        self._check_slot(slot)
        return SlotInfo(*SLOT_HEADER.unpack_from(self._map, _slot_offset(slot, self.slot_bytes)))

    def read(self, slot: int, seq: int, out: np.ndarray | None = None) -> np.ndarray | None:
        """Copy the frame ``seq`` from ``slot``; ``None`` when it was overwritten (counted)."""
        self._check_slot(slot)
        off = _slot_offset(slot, self.slot_bytes)
        before = SlotInfo(*SLOT_HEADER.unpack_from(self._map, off))
        if before.seq != seq:
            self.overwritten += 1
            return None
        shape = (before.height, before.width, before.channels)
        nbytes = before.height * before.width * before.channels
        if nbytes == 0 or nbytes > self.slot_bytes:
            self.overwritten += 1
            return None
        src = np.ndarray((nbytes,), np.uint8, self._map, off + HEADER_BYTES)
        frame = out if out is not None and out.shape == shape else np.empty(shape, np.uint8)
        frame.reshape(-1)[:] = src
        (after,) = struct.unpack_from("<Q", self._map, off)
        if after != seq:
            self.overwritten += 1
            return None
        return frame

    def _check_slot(self, slot: int) -> None:
        if not 0 <= slot < self.slots:
            raise RingError(f"slot {slot} outside ring of {self.slots}")

    def close(self) -> None:
        # BufferError: a caller still holds a view; the mapping then dies with the process.
        with contextlib.suppress(BufferError):
            self._map.close()

    def __enter__(self) -> RingReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
