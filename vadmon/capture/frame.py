"""Reading one camera: a thread that opens the source and keeps only its newest frame.

OpenCV's ``read()`` blocks for up to its read timeout; reading in a thread keeps the capture loop
(``vadmon.capture.process``) free to send heartbeats and react to the watchdog while a camera is
stalled. The loop takes the newest frame and writes it into the shared-memory ring.
"""

from __future__ import annotations

import threading

import numpy as np

from vadmon.capture.source import ErrorKind, FrameSource, SourceError


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

    def run(self) -> None:
        try:
            self.source.open()
            while not self._stop:
                frame, ts = self.source.read()
                with self._cond:
                    self.skipped += self._frame is not None
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

    def take(self, timeout_s: float) -> tuple[np.ndarray, float] | SourceError | None:
        with self._cond:
            self._cond.wait_for(lambda: self._frame or self._error, timeout_s)
            if self._frame is not None:
                item, self._frame = self._frame, None
                return item
            return self._error

    def stop(self) -> None:
        """Ask the thread to finish; it closes the source itself (never joined for long)."""
        self._stop = True
