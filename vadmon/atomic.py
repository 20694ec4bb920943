"""Atomic file writes: nothing a user already has is ever left half-written.

Everything vadmon writes that someone may read while it is being written, or that must survive
an interrupted run (checkpoints, training state, score files, snapshots, clips), goes to a
temporary name in the same directory, is fsynced, and is renamed over the target.

Permissions: artefacts (checkpoints, features, reports) follow the process umask like any other
tool's output, so a service account in the same group can read an imported checkpoint.
``private=True`` is for event data (snapshots, clips: pictures of people): files 0600 and the
directories created for them 0700, whatever the umask.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
from collections.abc import Iterator
from pathlib import Path

PRIVATE_FILE = 0o600
PRIVATE_DIR = 0o700


def make_dirs(path: Path, private: bool) -> None:
    """``mkdir -p``; with ``private`` every directory *created here* is 0700 (existing ones are
    left alone: they may be the user's)."""
    missing = []
    for parent in (path, *path.parents):
        if parent.exists():
            break
        missing.append(parent)
    for directory in reversed(missing):
        with contextlib.suppress(FileExistsError):
            directory.mkdir(mode=PRIVATE_DIR if private else 0o777)
            if private:
                os.chmod(directory, PRIVATE_DIR)  # mkdir's mode is masked by the umask


TEMP_NAME = re.compile(r"\..+\.[0-9a-f]{8}(\.[A-Za-z0-9]{1,8})?")
"""The names :func:`_create_temp` makes (``.<target>.<8 hex>[<suffix>]``): a process killed
mid-write leaves one, and its next start sweeps them (:func:`is_temp_name`)."""


def is_temp_name(name: str) -> bool:
    """True for a temporary name of ours, never for a finished file or a user's dotfile."""
    return TEMP_NAME.fullmatch(name) is not None


def _create_temp(path: Path, suffix: str, private: bool) -> Path:
    """A new empty file beside ``path``; the kernel applies the umask to 0666 (or 0600)."""
    mode = PRIVATE_FILE if private else 0o666
    for _ in range(100):
        tmp = path.parent / f".{path.name}.{secrets.token_hex(4)}{suffix}"
        try:
            fd = os.open(tmp, os.O_CREAT | os.O_EXCL | os.O_WRONLY | os.O_CLOEXEC, mode)
        except FileExistsError:
            continue
        os.close(fd)
        return tmp
    raise FileExistsError(f"no free temporary name beside {path}")


@contextlib.contextmanager
def atomic_path(path: Path | str, suffix: str = ".tmp", private: bool = False) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success it replaces ``path``, on error it goes.

    ``suffix`` matters to writers that pick a format from the name (``.npz``, ``.mp4``).
    Writers must write into the existing file (not unlink and recreate it) for ``private`` to
    hold; numpy, torch and OpenCV's FFmpeg muxer all open with truncation.
    """
    path = Path(path)
    make_dirs(path.parent, private)
    tmp = _create_temp(path, suffix, private)
    try:
        yield tmp
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


def atomic_write_bytes(path: Path | str, data: bytes, private: bool = False) -> None:
    with atomic_path(path, private=private) as tmp:
        tmp.write_bytes(data)


def atomic_write_text(path: Path | str, text: str, private: bool = False) -> None:
    atomic_write_bytes(path, text.encode("utf-8"), private)
