"""Media files out of the store, safely, with HTTP Range.

A file is served only when its real path (symlinks resolved) lies inside the media store's
real path and is a regular file: a database row pointing elsewhere, a ``..`` smuggled into a
name, or a symlink planted in the store out of it are all refused the same way (404, no hint
of what exists). Range: one ``bytes=`` range per request (what browsers send to seek a
``<video>``): 206 + Content-Range, 416 + ``Content-Range: bytes */size`` when unsatisfiable,
200 for a malformed or multi-range header (RFC 9110 lets a server ignore Range).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

CHUNK = 64 * 1024
RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")
TYPES = {".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".mp4": "video/mp4"}


@dataclass(frozen=True)
class Slice:
    status: int  # 200, 206 or 416
    start: int
    end: int  # inclusive; end < start for an empty body
    size: int

    def headers(self) -> dict[str, str]:
        out = {"accept-ranges": "bytes"}
        if self.status == 416:
            out["content-range"] = f"bytes */{self.size}"
            out["content-length"] = "0"
            return out
        if self.status == 206:
            out["content-range"] = f"bytes {self.start}-{self.end}/{self.size}"
        out["content-length"] = str(max(0, self.end - self.start + 1))
        return out


def inside_store(root: Path, candidate: str | os.PathLike[str]) -> Path | None:
    """``candidate``'s real path if it is a regular file under ``root``'s real path, else None."""
    try:
        real_root = Path(os.path.realpath(root))
        real = Path(os.path.realpath(candidate))
    except (OSError, ValueError):
        return None
    if real_root not in real.parents or real.suffix.lower() not in TYPES:
        return None
    return real if real.is_file() else None


def parse_range(header: str | None, size: int) -> Slice:
    """The part of a ``size``-byte file a ``Range`` header asks for."""
    whole = Slice(200, 0, size - 1, size)
    if not header:
        return whole
    m = RANGE.match(header.strip())
    if not m or (not m.group(1) and not m.group(2)):
        return whole  # malformed or several ranges: the whole file
    first, last = m.group(1), m.group(2)
    if not first:  # suffix: the last N bytes
        n = int(last)
        if n == 0 or size == 0:
            return Slice(416, 0, -1, size)
        return Slice(206, max(0, size - n), size - 1, size)
    start = int(first)
    if start >= size:
        return Slice(416, 0, -1, size)
    end = min(int(last), size - 1) if last else size - 1
    if end < start:
        return whole  # invalid range: ignored
    return Slice(206, start, end, size)


def read_slice(path: Path, part: Slice) -> Iterator[bytes]:
    """The bytes of ``part``, in chunks (opened once; a file replaced meanwhile is not mixed)."""
    if part.status == 416:
        return
    with open(path, "rb") as fh:
        fh.seek(part.start)
        left = part.end - part.start + 1
        while left > 0:
            chunk = fh.read(min(CHUNK, left))
            if not chunk:
                return
            left -= len(chunk)
            yield chunk


def content_type(path: Path) -> str:
    return TYPES[path.suffix.lower()]
