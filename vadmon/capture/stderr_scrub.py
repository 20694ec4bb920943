"""Secrets out of fd 2: FFmpeg writes there from C, past every Python logging filter."""

from __future__ import annotations

import os
import sys
import threading


class StderrScrubber:
    """Pipe fd 2 through a thread that masks secrets.

    FFmpeg and OpenCV write to fd 2 directly from C, past any Python logging filter; routing the
    descriptor itself through this filter is the only way to be sure a password that FFmpeg
    echoes (e.g. in an error naming the URL) never reaches the log.
    """

    def __init__(self, secrets: list[str]) -> None:
        self.secrets = [s.encode() for s in secrets if s]
        self._thread: threading.Thread | None = None

    def install(self) -> None:
        if not self.secrets:
            return
        sys.stderr.flush()
        self._saved = os.dup(2)
        read_fd, write_fd = os.pipe()
        os.dup2(write_fd, 2)
        os.close(write_fd)
        self._read_fd = read_fd
        self._thread = threading.Thread(target=self._pump, daemon=True, name="stderr-scrubber")
        self._thread.start()

    def _pump(self) -> None:
        pending = b""
        while True:
            chunk = os.read(self._read_fd, 65536)
            if not chunk:
                break
            pending += chunk
            # hold back a partial last line: a secret may be split across two writes
            head, sep, pending = pending.rpartition(b"\n")
            if sep:
                os.write(self._saved, self._mask(head + sep))
        if pending:
            os.write(self._saved, self._mask(pending))

    def _mask(self, data: bytes) -> bytes:
        for secret in self.secrets:
            data = data.replace(secret, b"***")
        return data

    def uninstall(self) -> None:
        """Drain and stop; fd 2 then points at /dev/null, not the unfiltered stream, because a
        source thread stuck in FFmpeg may still write after we are gone."""
        if self._thread is None:
            return
        sys.stderr.flush()
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 2)  # closes the pipe's write end held by fd 2 → the pump sees EOF
        os.close(devnull)
        self._thread.join(timeout=2)
        self._thread = None
