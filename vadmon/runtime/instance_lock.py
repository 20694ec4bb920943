"""One running monitor per instance name: an exclusive ``flock`` on a per-instance lock file.

Two monitors with the same ``instance:`` would share ipc socket paths and shared-memory names;
the second one used to fail on a busy socket and, on its way out, remove the first one's files.
The lock is taken before anything is created, so a refused monitor has nothing to clean up.

The lock file holds the holder's pid (shown in the refusal) and lives beside the default ipc
directories (``$XDG_RUNTIME_DIR`` or /tmp). The kernel drops the lock when every holder's
descriptor is closed (the supervisor's, and the janitor's once its cleanup is done), so a crash
never leaves a stale lock. The last holder (the janitor) removes the file; a waiter that then
gets the lock on the removed file notices (another inode at the path, or none) and locks the
path anew, so two monitors can never both hold "the" lock.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import time
from pathlib import Path

from vadmon.errors import VadmonError

# A janitor finishing the cleanup of a killed predecessor holds the lock for about a second.
WAIT_FOR_JANITOR_S = 5.0


def acquire_instance_lock(
    path: Path, instance: str, config: str = "config", wait_s: float = WAIT_FOR_JANITOR_S
) -> int:
    """Lock ``path`` exclusively; returns the descriptor (keep it open while running).

    Raises a ``VadmonError`` naming the config key when another live monitor holds it.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    deadline = time.monotonic() + wait_s
    fd = _open(path)
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            if time.monotonic() >= deadline:
                holder = _holder(fd)
                os.close(fd)
                raise VadmonError(
                    f"instance {instance!r} is already running{holder}",
                    f"{config}: instance:",
                    "stop that monitor, or give this config a different `instance:`",
                ) from None
            time.sleep(0.1)
            continue
        if _same_file(fd, path):
            break
        os.close(fd)  # locked a file its last holder had removed: lock the path anew
        fd = _open(path)
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    return fd


def _holder(fd: int) -> str:
    with contextlib.suppress(OSError, ValueError):
        pid = int(os.pread(fd, 32, 0).decode().strip())
        return f" (pid {pid})"
    return ""


def release_instance_lock(fd: int, path: Path) -> None:
    """The last holder's release: remove the file (if it is still ours), then unlock."""
    if _same_file(fd, path):
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
    os.close(fd)


def _open(path: Path) -> int:
    try:
        return os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    except OSError as exc:
        raise VadmonError(
            f"cannot open the instance lock ({exc.strerror})", str(path), "check permissions"
        ) from None


def _same_file(fd: int, path: Path) -> bool:
    try:
        return os.stat(path).st_ino == os.fstat(fd).st_ino
    except FileNotFoundError:
        return False
