"""Snapshots and MP4 clips from the PreviewFrames the alert process keeps in memory.

Each camera has a ring of recent encoded previews (JPEG bytes + ts), long enough to cover the
pre-capture *plus* the detection delay (min_duration + inference latency): by the time an event
is confirmed its start is already several seconds in the past. When an event starts, the
frames from ``start - pre_s`` on are copied into a recording that keeps growing until
``end + post_s``; then the clip is encoded on a background thread (decode JPEG → mp4v) so the
alert loop keeps receiving. Files appear atomically (temp name + rename): a consumer that follows
the path from a webhook never sees half a file.
"""

from __future__ import annotations

import contextlib
import logging
import re
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from vadmon.alerts.event import Event
from vadmon.atomic import atomic_path, atomic_write_bytes
from vadmon.runtime.messages import PreviewFrame

log = logging.getLogger("vadmon.alerts.clip_writer")


@dataclass(frozen=True)
class ClipSettings:
    out_dir: Path
    pre_s: float
    post_s: float
    ring_s: float
    max_clip_s: float
    finish_grace_s: float
    default_fps: float


@dataclass(frozen=True)
class Frame:
    ts: float
    jpeg: bytes


@dataclass
class _Recording:
    event: Event
    frames: list[Frame] = field(default_factory=list)
    end_ts: float | None = None
    future: Future[str | None] | None = None


def safe_name(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "_", text)[:100] or "_"


def clip_fps(frames: list[Frame], default: float) -> float:
    """Average rate of the previews (they may be decimated or irregular), clamped to 1–60."""
    if len(frames) < 2 or frames[-1].ts <= frames[0].ts:
        return default
    return float(min(60.0, max(1.0, (len(frames) - 1) / (frames[-1].ts - frames[0].ts))))


def encode_mp4(frames: list[Frame], path: Path, default_fps: float) -> str | None:
    """Write ``frames`` as an mp4v MP4 at ``path`` atomically; None when nothing decodes."""
    images = [cv2.imdecode(np.frombuffer(f.jpeg, np.uint8), cv2.IMREAD_COLOR) for f in frames]
    images = [img for img in images if img is not None]
    if not images:
        return None
    h, w = images[0].shape[:2]
    try:
        with atomic_path(path, suffix=".mp4") as tmp:
            writer = cv2.VideoWriter(
                str(tmp), cv2.VideoWriter_fourcc(*"mp4v"), clip_fps(frames, default_fps), (w, h)
            )
            if not writer.isOpened():
                raise OSError(f"cannot open an MP4 writer for {path}")
            try:
                for img in images:
                    writer.write(img if img.shape[:2] == (h, w) else cv2.resize(img, (w, h)))
            finally:
                writer.release()
            check_clip(tmp, len(images))  # before the rename: a broken clip never appears
    except OSError as exc:
        log.warning("clip %s not written: %s", path, exc)
        return None
    return str(path)


def check_clip(path: Path, frames: int) -> None:
    """OpenCV's writer reports no write errors (a full disk gives a truncated file without its
    index): read the file back and raise ``OSError`` unless every frame is there."""
    cap = cv2.VideoCapture(str(path))
    try:
        found = int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) if cap.isOpened() else 0
    finally:
        cap.release()
    if found != frames:
        raise OSError(f"clip is unreadable or short ({found} of {frames} frames; disk full?)")


class ClipWriter:
    """Per-camera preview rings, snapshots, and clip recordings keyed by event id."""

    def __init__(self, settings: ClipSettings) -> None:
        self.s = settings
        self.rings: dict[str, deque[Frame]] = {}
        self.recordings: dict[str, _Recording] = {}
        self.pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="vadmon-clip")
        self.counters = {
            "frames": 0,
            "snapshots": 0,
            "snapshot_errors": 0,
            "clips": 0,
            "clip_errors": 0,
        }

    def _dir(self, camera: str) -> Path:
        return Path(self.s.out_dir) / safe_name(camera)

    def add(self, frame: PreviewFrame, jpeg: bytes) -> None:
        ring = self.rings.setdefault(frame.camera, deque())
        item = Frame(frame.ts, jpeg)
        ring.append(item)
        self.counters["frames"] += 1
        while ring and ring[0].ts < frame.ts - self.s.ring_s:
            ring.popleft()
        for rec in self.recordings.values():
            if rec.event.camera != frame.camera or rec.future is not None:
                continue
            if rec.frames and frame.ts <= rec.frames[-1].ts:
                continue
            if frame.ts - rec.event.start_ts <= self.s.max_clip_s and (
                rec.end_ts is None or frame.ts <= rec.end_ts + self.s.post_s
            ):
                rec.frames.append(item)

    def snapshot(self, event: Event) -> str | None:
        """Write the preview nearest the event's peak (else start) before ``start`` is sent."""
        ring = self.rings.get(event.camera)
        if not ring:
            return None
        target = event.peak_ts or event.start_ts
        best = min(ring, key=lambda f: abs(f.ts - target))
        path = self._dir(event.camera) / f"{safe_name(event.id)}.jpg"
        try:
            atomic_write_bytes(path, best.jpeg)
        except OSError as exc:  # full or read-only disk: the event goes out without it
            self.counters["snapshot_errors"] += 1
            log.warning("snapshot %s not written: %s", path, exc.strerror or exc)
            return None
        self.counters["snapshots"] += 1
        return str(path)

    def begin(self, event: Event) -> None:
        ring = self.rings.get(event.camera, deque())
        pre = [f for f in ring if f.ts >= event.start_ts - self.s.pre_s]
        self.recordings[event.id] = _Recording(event, pre)

    def end(self, event: Event) -> None:
        rec = self.recordings.get(event.id)
        if rec is None:
            rec = self.recordings[event.id] = _Recording(event)
        rec.event = event
        rec.end_ts = event.end_ts if event.end_ts is not None else event.start_ts

    def poll(self, now: float) -> list[tuple[Event, str | None]]:
        """Start encodes whose post-roll has elapsed; return finished (event, clip path)."""
        done: list[tuple[Event, str | None]] = []
        for event_id, rec in list(self.recordings.items()):
            if rec.end_ts is None:
                continue
            if rec.future is None:
                until = rec.end_ts + self.s.post_s
                newest = self.rings.get(rec.event.camera)
                have = bool(newest) and newest[-1].ts >= until
                if have or now >= until + self.s.finish_grace_s:
                    self._submit(rec)
            if rec.future is not None and rec.future.done():
                done.append((rec.event, self._result(rec)))
                del self.recordings[event_id]
        return done

    def flush(self, timeout: float = 30.0) -> list[tuple[Event, str | None]]:
        """Shutdown: encode every ended recording with the frames it has, and wait."""
        done: list[tuple[Event, str | None]] = []
        for event_id, rec in list(self.recordings.items()):
            if rec.end_ts is None:
                continue
            if rec.future is None:
                self._submit(rec)
            assert rec.future is not None
            with contextlib.suppress(Exception):
                rec.future.result(timeout)
            done.append((rec.event, self._result(rec)))
            del self.recordings[event_id]
        return done

    def close(self) -> None:
        self.pool.shutdown(wait=True, cancel_futures=False)

    def _submit(self, rec: _Recording) -> None:
        path = self._dir(rec.event.camera) / f"{safe_name(rec.event.id)}.mp4"
        # frames that arrived before the end was known may lie beyond the post-roll
        until = (rec.end_ts if rec.end_ts is not None else rec.event.start_ts) + self.s.post_s
        frames = [f for f in rec.frames if f.ts <= until]
        rec.future = self.pool.submit(encode_mp4, frames, path, self.s.default_fps)

    def _result(self, rec: _Recording) -> str | None:
        assert rec.future is not None
        try:
            path = rec.future.result(0)
        except Exception:
            path = None
        self.counters["clips" if path else "clip_errors"] += 1
        return path
