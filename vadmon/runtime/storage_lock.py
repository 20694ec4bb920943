"""One monitor per ``storage.dir``: an exclusive ``flock`` on ``<storage.dir>/.vadmon.lock``.

The instance lock keys on ``instance:``; two configs with different instance names but the same
``storage.dir`` passed it and then shared one outbox: the second recovered the first's open
events as "interrupted" and sent their ends to its own receivers. The monitor that runs the
alerts (role ``all`` or ``inference``) therefore also locks the storage folder for its life.
The file stays (it holds no state); the kernel drops the lock when the holder exits, however.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from pathlib import Path

from vadmon.errors import VadmonError

LOCK_NAME = ".vadmon.lock"


def acquire_storage_lock(directory: Path) -> int:
    """Lock ``directory`` for this process; returns the descriptor (keep it open)."""
    path = directory / LOCK_NAME
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    except OSError as exc:
        raise VadmonError(
            f"cannot open the storage lock ({exc.strerror})",
            f"storage.dir = {directory}",
            "make storage.dir writable or point it elsewhere",
        ) from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = ""
        with contextlib.suppress(OSError, ValueError):
            holder = f" (pid {int(os.pread(fd, 32, 0).decode().strip())})"
        os.close(fd)
        raise VadmonError(
            f"another monitor is using this storage folder{holder}",
            f"storage.dir = {directory}",
            "stop that monitor, or give this config a storage.dir of its own",
        ) from None
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    return fd
