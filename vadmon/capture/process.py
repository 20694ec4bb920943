"""The capture process: one camera → shared-memory ring + small messages.

One loop, top to bottom: take the newest frame from the source thread → watchdog → ring →
``SnippetMessage`` (PUSH, non-blocking, drops counted) → ``PreviewFrame`` (PUB, downscaled
JPEG) → every second one ``CaptureStatus`` body: heartbeat to the supervisor, same bytes on PUB.

The source is read in its own thread because OpenCV blocks for up to its read timeout; the loop
itself never blocks on the camera or on a consumer, so heartbeats keep flowing while a camera is
stalled and a dead inference process only costs counted drops.

Sockets (both bound by this process; consumers connect):

- ``capture-<camera>`` PUB: topics ``preview`` (alerts: snapshots and clips) and ``status``
  (for observers: ``vadmon bench monitor`` and the end-to-end tests; the supervisor and the
  dashboard read the heartbeat).
- ``snippets-<camera>`` PUSH: ``SnippetMessage``; PUSH (not PUB) so a full or absent consumer
  is visible as a failed non-blocking send and counted.

Run through ``python -m vadmon.capture`` (``vadmon/capture/__main__.py``); the reader thread is
``vadmon.capture.frame``.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass

import cv2
import numpy as np
import zmq
from pydantic import ValidationError

from vadmon.capture.camera_log import CameraLog
from vadmon.capture.frame import SourceReader
from vadmon.capture.hold import SnippetHold
from vadmon.capture.preview_link import LinkPreviews, downscaled
from vadmon.capture.setup import (
    CaptureSettings,
    build_source,
    open_source_description,
)
from vadmon.capture.snippet import SnippetAssembler
from vadmon.capture.source import ErrorKind, FrameSource, SourceError
from vadmon.capture.verdicts import VerdictClient, open_verdicts
from vadmon.capture.watchdog import Action, CameraState, Watchdog, fingerprint
from vadmon.runtime.heartbeat import TOPIC, HeartbeatSender, encode
from vadmon.runtime.limits import SNIPPET_KERNEL_BUFFER_BYTES
from vadmon.runtime.link import FramePacker, LinkPreviewSettings, open_client
from vadmon.runtime.log_repeat import RepeatLog
from vadmon.runtime.logs import fields
from vadmon.runtime.messages import PreviewFrame, SnippetMessage
from vadmon.runtime.ring import CameraRing
from vadmon.runtime.status_schema import (
    CAPTURE_PREFIX,
    CaptureCounters,
    CaptureInfo,
    CaptureStatus,
    RateMeter,
)
from vadmon.runtime.transport import (
    SendStats,
    SocketLimits,
    close_socket,
    publisher,
    pusher,
    send_message,
    send_parts,
)
from vadmon.runtime.zmq_context import process_context

log = logging.getLogger("vadmon.capture.process")


@dataclass
class Counters:
    frames: int = 0
    snippets: int = 0
    previews: int = 0
    ring_recreated: int = 0


class CaptureLoop:
    """State of one capture process; ``step()`` is one iteration of the loop."""

    def __init__(
        self,
        settings: CaptureSettings,
        pub: zmq.Socket,
        push: zmq.Socket,
        inline_frames: bool = False,
        link_previews: LinkPreviewSettings | None = None,
    ) -> None:
        self.settings = settings
        self.pub = pub
        self.push = push
        self.packer = FramePacker() if inline_frames else None
        # until inference connects (its model loading), snippets are held, not dropped
        hold = settings.hold_snippets if not inline_frames else 0
        self.hold = SnippetHold(settings.camera, push, hold) if hold > 0 else None
        self.link_previews = (
            LinkPreviews(settings.camera, link_previews)
            if inline_frames and link_previews
            else None
        )
        self.heartbeat = HeartbeatSender.from_env()
        self.ring = CameraRing(settings.camera, settings.ring_slots)
        self.watchdog = Watchdog(settings.watchdog)
        self.snippets = SnippetAssembler(settings.camera, settings.snippet)
        self.counters = Counters()
        self.pub_stats = SendStats()
        self.snippet_stats = SendStats()
        self.reader: SourceReader | None = None
        self.source_skipped = 0
        self.source_fps = 0.0
        self.description = open_source_description(settings)
        self.seq = 0
        self.shape: tuple[int, int, int] = (0, 0, 0)
        self._last_preview = 0.0
        self._last_status = 0.0
        self.rate = RateMeter()  # frames per second over a real window, None at first
        self.error = ""  # the last source error in words (redacted), for the dashboard
        self._logged_state = ""
        self.clog = CameraLog(settings.camera, log)  # collapses a failing camera's lines
        self.link_log = RepeatLog(log)  # tcp link: snippets it could not take
        self.verdicts: VerdictClient | None = None  # tcp link: what inference made of ours

    def start(self) -> None:
        # one camera per process, several per core: OpenCV's worker pool only adds its spinning
        # (measured 0.3 ms per frame of sched_yield for thumbnails and previews)
        cv2.setNumThreads(1)
        self._apply(self.watchdog.start(time.monotonic()))
        self._log_state_change()

    def step(self) -> None:
        if self.reader is not None:
            item = self.reader.take(0.05)
        else:  # waiting out a backoff
            item = None
            time.sleep(0.05)
        now = time.monotonic()
        if (
            isinstance(item, SourceError)
            and item.kind is ErrorKind.ENDED
            and not self.settings.loop
        ):
            log.info(
                "camera %s: end of %s (loop: false): done", self.settings.camera, self.description
            )
            self._stop_reader()
            self.watchdog.end()
        elif isinstance(item, SourceError):
            if not self.clog.quiet():
                log.warning("camera %s: %s", self.settings.camera, item)
            self.error = str(item)[:200]
            self._apply(self.watchdog.on_error(now, item.kind.value))
        elif item is not None:
            frame, ts = item
            self._apply(self.watchdog.on_frame(now, frame.shape, self._thumb(frame, now)))
            if self.watchdog.state is CameraState.ONLINE:
                self._publish_frame(frame, ts, now)
        self._apply(self.watchdog.tick(now))
        self._log_state_change()
        if self.link_previews is not None:
            self.link_previews.flush(self.push, now)
        if self.hold is not None:
            self.hold.flush(self.snippet_stats)
        if self.verdicts is not None:
            self.verdicts.poll(now)
        if now - self._last_status >= self.settings.status_interval_s:
            self._publish_status(now)

    def _log_state_change(self) -> None:
        """One line per camera state change (service mode reads these, not counters)."""
        state = self.watchdog.state.value
        if state == self._logged_state:
            return
        previous, self._logged_state = self._logged_state, state
        if state == CameraState.ONLINE.value:
            self.error = ""
            self.rate.start()
            self.clog.online()
        elif not self.error and previous:
            self.error = self.watchdog.counters.last_error  # e.g. a stall: no source error
        reason = self.error
        extra = {"camera": self.settings.camera, "state": state, "previous": previous or "start"}
        if reason:
            extra["reason"] = reason
        if self.clog.state_line(state):
            log.info("camera state %s", state, extra=fields(**extra))

    def _thumb(self, frame: np.ndarray, now: float) -> np.ndarray | None:
        return fingerprint(frame) if self.watchdog.wants_thumb(now) else None

    def _apply(self, action: Action) -> None:
        """Carry out what the watchdog decided: open or close the source."""
        state = self.watchdog.state.value
        if action is Action.DISCONNECT:
            self._stop_reader()
            self.clog.disconnected(
                state, self.watchdog.counters.last_error, self.watchdog.last_backoff_s
            )
        elif action is Action.CONNECT:
            self._stop_reader()
            if not self.clog.quiet():
                log.info("camera %s: connecting to %s", self.settings.camera, self.description)
            self.snippets.reset()
            self.reader = SourceReader(self._build_source())
            self.reader.start()

    def _build_source(self) -> FrameSource:
        return build_source(self.settings)

    def _stop_reader(self) -> None:
        if self.reader is not None:
            self.source_skipped += self.reader.skipped
            self.source_fps = self.reader.source.fps
            self.reader.stop()
            self.reader = None

    def _publish_frame(self, frame: np.ndarray, ts: float, now: float) -> None:
        self.seq += 1
        if frame.ndim == 2:
            frame = frame[:, :, None]
        shape = (frame.shape[0], frame.shape[1], frame.shape[2])
        if shape != self.shape and self.counters.frames:
            log.info("camera %s: resolution %dx%d", self.settings.camera, shape[1], shape[0])
        self.shape = shape
        before = self.ring.recreated
        ring_name, slot = self.ring.prepare(frame), -1
        if self.snippets.wants(ts, ring_name, shape):  # only frames a snippet hands on
            slot = self.ring.write(frame, self.seq, ts)[1]
        self.counters.ring_recreated += self.ring.recreated - before
        self.counters.frames += 1
        self.rate.add(now=now)
        if self.reader is not None:
            self.source_fps = self.reader.source.fps
        snippet = self.snippets.push(self.seq, ts, slot, ring_name, shape)
        if snippet is not None:
            self.counters.snippets += 1
            self._send_snippet(snippet)
        if (
            self.settings.preview_fps > 0
            and now - self._last_preview >= 1 / self.settings.preview_fps
        ):
            self._last_preview = now
            self._publish_preview(frame, ts)
        if self.link_previews is not None:
            self.link_previews.offer(frame, self.seq, ts, now)

    def _send_snippet(self, snippet: SnippetMessage) -> None:
        if self.packer is None:
            if self.hold is not None and self.hold.holding():
                self.hold.offer(snippet)
                return
            send_message(self.push, snippet, stats=self.snippet_stats)
            return
        # tcp link: copy + resize only when the link can take the message right now
        packed = self.packer.pack(snippet) if self.push.poll(0, zmq.POLLOUT) else None
        sent = packed is not None and send_message(self.push, *packed, self.snippet_stats)
        if packed is None:
            self.snippet_stats.dropped += 1
        self._link_sent(snippet, sent)
        if self.link_previews is not None:
            if sent:
                self.link_previews.counters["link_snippet_bytes"] += len(packed[1])
            else:
                self.link_previews.snippet_refused(time.monotonic())

    def _publish_preview(self, frame: np.ndarray, ts: float) -> None:
        small = downscaled(frame, self.settings.preview_max_width)
        ok, jpeg = cv2.imencode(
            ".jpg", small, [cv2.IMWRITE_JPEG_QUALITY, self.settings.preview_jpeg_quality]
        )
        if not ok:
            return
        msg = PreviewFrame(self.settings.camera, self.seq, ts, small.shape[0], small.shape[1])
        if send_message(self.pub, msg, jpeg.tobytes(), self.pub_stats):
            self.counters.previews += 1

    def _link_sent(self, snippet: SnippetMessage, sent: bool) -> None:
        """A snippet the tcp link could not take (inference host not connected yet, or its
        queue full) is counted in ``snippet_drops_total`` and said in the log: once, then
        collapsed (``RepeatLog``), and once more when snippets flow again."""
        cam = self.settings.camera
        if sent:
            self.link_log.recovered(cam, f"camera {cam}: snippets reach the inference host again")
            return
        self.link_log.failed(cam, "link not ready", f"camera {cam}: snippet "
                             f"#{snippet.snippet_index} not sent: the inference host is not "
                             "connected or not keeping up (counted in snippet drops)")  # fmt: skip

    def _publish_status(self, now: float) -> None:
        """One typed body (``CaptureStatus``), sent as is: to the supervisor's heartbeat and,
        the same bytes, on the PUB ``status`` topic for observers (bench, tests)."""
        self._last_status = now
        try:
            body = self.status(now)
        except ValidationError as exc:  # our own numbers: log, and keep beating without them
            log.warning("camera %s: status body left out: %s", self.settings.camera, exc)
            body = None
        payload = encode(f"{CAPTURE_PREFIX}{self.settings.camera}", body)
        send_parts(self.pub, [TOPIC, payload], self.pub_stats)
        if self.heartbeat is not None:
            self.heartbeat.beat(body)

    def status(self, now: float) -> CaptureStatus:
        wd = self.watchdog.counters
        skipped = self.source_skipped + (self.reader.skipped if self.reader else 0)
        counters = CaptureCounters(
            frames_total=self.counters.frames,
            fps=self.rate.rate(now),  # None until a real window has passed
            source_fps=self.source_fps,
            source_skipped=skipped,
            snippets_total=self.counters.snippets,
            snippets_sent=self.snippet_stats.sent,
            snippet_drops_total=self.snippet_stats.dropped,
            previews=self.counters.previews,
            reconnects_total=wd.reconnects,
            stalls_total=wd.stalls,
            stalls_per_hour=self.watchdog.stalls_last_hour(now),
            frozen=wd.frozen,
            resolution_changes=wd.resolution_changes,
            ring_recreated=self.counters.ring_recreated,
            **(self.link_previews.counters if self.link_previews else {}),
            **(self.hold.counters() if self.hold else {}),
        )
        info = CaptureInfo(
            source=self.description[:200],
            resolution=f"{self.shape[1]}x{self.shape[0]}",
            error=self.error,
            retry_in_s=round(max(0.0, self.watchdog.next_attempt_at - now), 2),
            last_error=wd.last_error[:64],
            errors=dict(list(wd.errors.items())[:16]),
            ring=self.ring.name,
            height=self.shape[0],
            width=self.shape[1],
            link=self.verdicts.body() if self.verdicts else None,
        )
        return CaptureStatus(
            camera=self.settings.camera, state=self.watchdog.state, counters=counters, info=info
        )

    def close(self) -> None:
        self._stop_reader()
        if self.packer is not None:
            self.packer.close()
        if self.hold is not None:
            self.hold.close()
        if self.verdicts is not None:
            self.verdicts.close()
        self.ring.close()
        if self.heartbeat is not None:
            self.heartbeat.close()


def run_capture(settings: CaptureSettings, stop: threading.Event) -> int:
    """Capture until ``stop`` is set; always unlinks its ring and ipc files on the way out."""
    endpoints = settings.endpoints
    ctx = process_context()
    pub = push = None
    loop: CaptureLoop | None = None
    try:
        pub = publisher(ctx, endpoints.publish, limits=SocketLimits(hwm=settings.pub_hwm))
        limits = SocketLimits(hwm=settings.snippet_hwm, kernel_buffer_bytes=SNIPPET_KERNEL_BUFFER_BYTES)
        if endpoints.link is not None:
            push = open_client(ctx, endpoints.link, limits)
        else:
            push = pusher(ctx, endpoints.snippets, limits=limits)
        link = endpoints.link
        loop = CaptureLoop(
            settings,
            pub,
            push,
            inline_frames=link is not None,
            link_previews=link and link.previews,
        )
        loop.verdicts = open_verdicts(ctx, settings.camera, link)
        loop.start()
        while not stop.is_set():
            loop.step()
    finally:
        if loop is not None:
            loop.close()
        if push is not None:
            close_socket(push, endpoints.snippets)
        if pub is not None:
            close_socket(pub, endpoints.publish)
    return 0


# --- command line ---------------------------------------------------------------------------
