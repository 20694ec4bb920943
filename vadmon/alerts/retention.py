"""Retention: snapshots, clips and outbox rows pruned by age and by total size, oldest first.

A monitor left running for months must not fill its disk: every event writes a snapshot and a
clip, and every webhook a row. Two limits apply to each store: an age (``media_days``,
``events_days``) and a total size (``max_media_gb``, ``max_outbox_mb``). Oldest goes first.

Never deleted: the files of an event that is still open or whose clip is still being cut
(``protected`` ids, passed in by the clip writer), the files of an event a webhook row still
``pending`` refers to (``held``: the receiver will fetch what the payload names), events in
state ``open``/``ending``, and webhook rows still ``pending``. When the media cap cannot be met without touching those, the
new file is not written: the event is delivered without that media and the skip is counted
(``media_skipped``), which is what an operator wants from a full quota, rather than losing
older evidence of a closed event *and* still overflowing.

Media files are ``<media_dir>/<camera>/<event id>.<ext>``; the event id is the file's stem.
Ages come from file modification times (a clip is written once, atomically).
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from vadmon.atomic import is_temp_name

MEDIA_SUFFIXES = (".jpg", ".mp4", ".webm")


@dataclass(frozen=True)
class RetentionSettings:
    """Limits per store; ``None`` = no limit of that kind."""

    media_dir: Path
    media_max_age_s: float | None
    media_max_bytes: int | None
    events_max_age_s: float | None
    outbox_max_bytes: int | None
    interval_s: float  # how often the periodic prune runs


@dataclass(frozen=True)
class _File:
    path: Path
    event_id: str
    mtime: float
    size: int


class MediaStore:
    """The media directory as retention sees it (scanned on demand: it is bounded by the cap)."""

    def __init__(self, settings: RetentionSettings) -> None:
        self.s = settings
        self.counters = {"media_pruned": 0, "media_pruned_bytes": 0, "media_skipped": 0,
                         "temp_swept": 0}  # fmt: skip
        # the alert loop (snapshots) and the clip encoder thread write concurrently: room is
        # reserved under the lock and counted until the file is visible, so the sum of what is
        # on disk never passes the cap, not even between a clip's rename and the next prune
        self.lock = threading.Lock()
        self.reserved = 0
        # events an undelivered (pending) webhook refers to: their media is never deleted;
        # set by the alert loop (the outbox is its thread's), read under ``lock`` here
        self.held: frozenset[str] = frozenset()

    def files(self) -> list[_File]:
        """Finished media files, oldest first (temporary ``.name.*`` files are not ours yet)."""
        found: list[_File] = []
        root = self.s.media_dir
        if not root.is_dir():
            return found
        for camera in os.scandir(root):
            if not camera.is_dir(follow_symlinks=False):
                continue
            for entry in os.scandir(camera.path):
                name = entry.name
                if name.startswith(".") or not name.endswith(MEDIA_SUFFIXES):
                    continue
                with contextlib.suppress(FileNotFoundError):
                    info = entry.stat(follow_symlinks=False)
                    stem = name.rsplit(".", 1)[0]
                    found.append(_File(Path(entry.path), stem, info.st_mtime, info.st_size))
        return sorted(found, key=lambda f: (f.mtime, f.path.name))

    def sweep_temp(self) -> int:
        """Delete the half-written temporaries a killed run left (``.<name>.<hex>.<ext>``).

        Called at start, before this process writes anything: only the alerts process writes
        media (one per storage.dir, which is locked), so every temporary here is a dead one.
        """
        root = self.s.media_dir
        if not root.is_dir():
            return 0
        swept = 0
        for camera in os.scandir(root):
            if not camera.is_dir(follow_symlinks=False):
                continue
            for entry in os.scandir(camera.path):
                if is_temp_name(entry.name) and entry.is_file(follow_symlinks=False):
                    with contextlib.suppress(FileNotFoundError):
                        os.unlink(entry.path)
                        swept += 1
        self.counters["temp_swept"] += swept
        return swept

    def usage(self) -> int:
        return sum(f.size for f in self.files())

    def prune(self, now: float, protected: Iterable[str]) -> int:
        """Delete media past ``media_max_age_s``, then oldest until under ``media_max_bytes``."""
        with self.lock:
            return self._prune(now, set(protected) | self.held)

    def _prune(self, now: float, keep: set[str]) -> int:
        removed = 0
        files = self.files()
        if self.s.media_max_age_s is not None:
            cutoff = now - self.s.media_max_age_s
            old = [f for f in files if f.mtime < cutoff and f.event_id not in keep]
            removed += self._remove(old)
            files = [f for f in files if f not in old]
        removed += self._shrink(files, 0, keep)
        return removed

    def reserve(self, nbytes: int, protected: Iterable[str]) -> bool:
        """Room for a new file of ``nbytes`` (oldest others pruned); False (counted) when the
        cap cannot allow it. Call ``release(nbytes)`` once the file is in place (or not)."""
        with self.lock:
            cap = self.s.media_max_bytes
            if cap is not None:
                keep = set(protected) | self.held
                files = self.files()
                kept = sum(f.size for f in files if f.event_id in keep)
                if kept + self.reserved + nbytes > cap:  # would not fit even after pruning:
                    self.counters["media_skipped"] += 1  # delete nothing for it
                    return False
                self._shrink(files, nbytes + self.reserved, keep)
            self.reserved += nbytes
            return True

    def release(self, nbytes: int) -> None:
        with self.lock:
            self.reserved -= nbytes

    def _shrink(self, files: list[_File], extra: int, keep: set[str]) -> int:
        cap = self.s.media_max_bytes
        if cap is None:
            return 0
        total = sum(f.size for f in files) + extra
        victims: list[_File] = []
        for f in files:  # oldest first
            if total <= cap:
                break
            if f.event_id in keep:
                continue
            victims.append(f)
            total -= f.size
        return self._remove(victims)

    def _remove(self, files: list[_File]) -> int:
        for f in files:
            with contextlib.suppress(FileNotFoundError):
                f.path.unlink()
                self.counters["media_pruned"] += 1
                self.counters["media_pruned_bytes"] += f.size
        return len(files)
