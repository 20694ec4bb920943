"""Reading one camera: a thread that opens the source and keeps only its newest frame.

OpenCV's ``read()`` blocks for up to its read timeout; reading in a thread keeps the capture loop
(``vadmon.capture.process``) free to send heartbeats and react to the watchdog while a camera is
stalled. The loop takes the newest frame and writes it into the shared-memory ring.

Buffers are recycled: a fresh 640×360 frame per read costs its page faults (measured: ``read()``
1.1–1.6 ms, ``read(buffer)`` 0.8 ms, the same as ``grab()`` alone), so the reader decodes into a
frame the loop has finished with. A frame is the loop's from ``take()`` until its next
``take()`` (the loop keeps no frame past one step); a frame skipped unread goes back at once.
"""

from __future__ import annotations

import threading

import numpy as np

from vadmon.capture.source import ErrorKind, FrameSource, SourceError

SPARES = 2  # decoding + waiting; a third is with the loop: more are never needed


class SourceReader(threading.Thread):
    """Opens and reads one source in a thread; keeps only the newest frame (latest wins)."""

    def __init__(self, source: FrameSource) -> None:
        super().__init__(daemon=True, name="source-reader")
        self.source = source
        self.skipped = 0
        self._cond = threading.Condition()
        self._frame: tuple[np.ndarray, float] | None = None
        self._error: SourceError | None = None
        self._stop = False
        self._spares: list[np.ndarray] = []  # frames nobody uses any more
        self._lent: np.ndarray | None = None  # the frame the loop took last

    def run(self) -> None:
        try:
            self.source.open()
            while not self._stop:
                with self._cond:
                    out = self._spares.pop() if self._spares else None
                frame, ts = self.source.read(out)
                with self._cond:
                    if self._frame is not None:
                        self.skipped += 1
                        self._give_back(self._frame[0])
                    self._frame = (frame, ts)
                    self._cond.notify()
        except SourceError as exc:
            with self._cond:
                self._error = exc
                self._cond.notify()
        except Exception as exc:  # any backend failure is a source error, never a crash
            with self._cond:
                self._error = SourceError(ErrorKind.UNKNOWN, f"{type(exc).__name__}")
                self._cond.notify()
        finally:
            self.source.close()

    def _give_back(self, frame: np.ndarray) -> None:
        """Called with the lock held: ``frame`` may be decoded into again."""
        if len(self._spares) < SPARES:
            self._spares.append(frame)

    def take(self, timeout_s: float) -> tuple[np.ndarray, float] | SourceError | None:
        """The newest frame (the one taken before may be overwritten from now on)."""
        with self._cond:
            if self._lent is not None:
                self._give_back(self._lent)
                self._lent = None
            self._cond.wait_for(lambda: self._frame or self._error, timeout_s)
            if self._frame is not None:
                item, self._frame = self._frame, None
                self._lent = item[0]
                return item
            return self._error

    def stop(self) -> None:
        """Ask the thread to finish; it closes the source itself (never joined for long)."""
        self._stop = True
