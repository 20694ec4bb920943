"""Snapshots and H.264 clips from the PreviewFrames the alert process keeps in memory.

Each camera has a ring of recent encoded previews (JPEG bytes + ts), long enough to cover the
pre-capture *plus* the detection delay (min_duration + inference latency): by the time an event
is confirmed its start is already several seconds in the past. When an event starts, the
frames from ``start - pre_s`` on are copied into a recording that keeps growing until
``end + post_s``; then the clip is encoded on a background thread (JPEG → H.264 MP4, see
``vadmon.alerts.video``) so the alert loop keeps receiving. Files appear atomically (temp name + rename): a consumer that follows
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

from vadmon.alerts.event import Event
from vadmon.alerts.retention import MediaStore
from vadmon.alerts.video import NO_ROOM, encode_clip
from vadmon.atomic import atomic_write_bytes
from vadmon.runtime.messages import PreviewFrame

log = logging.getLogger("vadmon.alerts.clip_writer")
PEAK_SLACK_S = 1.0  # a preview further than this from the peak is not the peak's frame


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


def missing_spans(stamps: list[float], start: float, until: float) -> list[list[float]]:
    """Stretches of ``[start, until]`` with no frame: more than 3 typical frame intervals (and
    at least 1 s) between frames, or before the first / after the last. A clip that spans a link
    outage or a dead camera says where its frames are missing instead of pretending."""
    if not stamps:
        return [[round(start, 3), round(until, 3)]]
    steps = sorted(b - a for a, b in zip(stamps, stamps[1:], strict=False) if b > a)
    limit = max(1.0, 3 * steps[len(steps) // 2]) if steps else 1.0
    edges = [start, *stamps, until]
    return [
        [round(a, 3), round(b, 3)] for a, b in zip(edges, edges[1:], strict=False) if b - a > limit
    ]


def safe_name(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "_", text)[:100] or "_"


class ClipWriter:
    """Per-camera preview rings, snapshots, and clip recordings keyed by event id."""

    def __init__(self, settings: ClipSettings, store: MediaStore | None = None) -> None:
        self.s = settings
        self.store = store  # retention: media quota (None: no limits)
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
        self.snapshot_ts: dict[str, float] = {}  # event id → preview ts in its snapshot

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
        """Write the preview nearest the event's peak so far; None when there is none.

        Called at ``start`` (the file exists before the webhook goes out) and again at each
        ``update``/``end``: the peak a start knows is only its first snippet's, often the edge
        of the anomaly, so the same path is atomically replaced when the peak has moved and
        the ``end`` message's snapshot shows the peak. A peak that has left the ring (older
        than ``ring_s``) keeps the snapshot already written.
        """
        ring = self.rings.get(event.camera)
        path = self._dir(event.camera) / f"{safe_name(event.id)}.jpg"
        written = self.snapshot_ts.get(event.id)
        if not ring:
            return str(path) if written is not None else None
        target = event.peak_ts or event.start_ts
        best = min(ring, key=lambda f: abs(f.ts - target))
        if written is not None and (best.ts == written or abs(best.ts - target) > PEAK_SLACK_S):
            return str(path)
        size = len(best.jpeg)
        if self.store is not None and not self.store.reserve(size, {*self.protected(), event.id}):
            return str(path) if written is not None else None  # no room under the media cap
        try:
            atomic_write_bytes(path, best.jpeg, private=True)
        except OSError as exc:  # full or read-only disk: the event goes out without a new one
            self.counters["snapshot_errors"] += 1
            log.warning("snapshot %s not written: %s", path, exc.strerror or exc)
            return str(path) if written is not None else None
        finally:
            if self.store is not None:
                self.store.release(size)
        self.snapshot_ts[event.id] = best.ts
        self.counters["snapshots"] += written is None
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
                self._forget(event_id)
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
            self._forget(event_id)
        return done

    def _forget(self, event_id: str) -> None:
        del self.recordings[event_id]
        self.snapshot_ts.pop(event_id, None)

    def close(self) -> None:
        self.pool.shutdown(wait=True, cancel_futures=False)

    def _submit(self, rec: _Recording) -> None:
        stem = self._dir(rec.event.camera) / safe_name(rec.event.id)
        # frames that arrived before the end was known may lie beyond the post-roll
        until = (rec.end_ts if rec.end_ts is not None else rec.event.start_ts) + self.s.post_s
        frames = [f for f in rec.frames if f.ts <= until]
        start = rec.event.start_ts - self.s.pre_s
        rec.event.clip_gaps = missing_spans([f.ts for f in frames], start, until)
        quota = None
        if self.store is not None:
            quota = (self.store, {*self.protected(), rec.event.id})
        rec.future = self.pool.submit(encode_clip, frames, stem, self.s.default_fps, quota)

    def _result(self, rec: _Recording) -> str | None:
        assert rec.future is not None
        try:
            path = rec.future.result(0)
        except Exception:
            path = None
        if path == NO_ROOM:
            return None  # over the media cap even after pruning: counted by the store
        self.counters["clips" if path else "clip_errors"] += 1
        return path

    def protected(self) -> set[str]:
        """File stems retention must not touch: events open or with a clip still to cut."""
        return {safe_name(event_id) for event_id in self.recordings}
