"""Sampled frames out of the capture processes' shared-memory rings, one mapping per camera.

A snippet names ring slots; a slot overwritten meanwhile is an ordinary skip (the seqlock says
so). A ring that vanished or a slot it does not have is a fault of that one snippet: it is
dropped and counted, the camera's mapping released, and inference goes on. A new ring name
means the capture restarted or changed resolution, so the old mapping (up to ~200 MB at 1080p)
is released before the new one is opened.
"""

from __future__ import annotations

import logging

import numpy as np

from vadmon.runtime.messages import SnippetMessage
from vadmon.runtime.ring import RingError, RingReader

log = logging.getLogger("vadmon.inference.rings")


class CameraRings:
    def __init__(self) -> None:
        self.readers: dict[str, RingReader] = {}  # by camera: the ring it writes now
        self.errors = 0
        self.failed = False  # the last read was a fault, not an ordinary overwrite

    def read(self, msg: SnippetMessage) -> list[np.ndarray] | None:
        self.failed = False
        try:
            reader = self._reader(msg.camera, msg.ring)
            frames = []
            for slot, seq in zip(msg.slots, msg.seqs, strict=True):
                frame = reader.read(slot, seq)
                if frame is None:
                    return None  # overwritten meanwhile: an ordinary skip
                frames.append(frame)
        except (RingError, ValueError, IndexError) as exc:
            self.failed = True
            self.errors += 1
            self._release(msg.camera)
            log.warning("camera %s: snippet dropped: %s", msg.camera, str(exc)[:200])
            return None
        return frames

    def _reader(self, camera: str, ring: str) -> RingReader:
        reader = self.readers.get(camera)
        if reader is not None and reader.name == ring:
            return reader
        self._release(camera)
        reader = self.readers[camera] = RingReader(ring)
        return reader

    def _release(self, camera: str) -> None:
        reader = self.readers.pop(camera, None)
        if reader is not None:
            reader.close()

    def close(self) -> None:
        for camera in list(self.readers):
            self._release(camera)
