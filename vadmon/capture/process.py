"""The capture process: one camera → shared-memory ring + small messages.

One loop, top to bottom: take the newest frame from the source thread → watchdog → ring →
``FrameHeader`` (PUB) → ``SnippetMessage`` (PUSH, non-blocking, drops counted) →
``PreviewFrame`` (PUB, downscaled JPEG) → ``Status`` heartbeat (PUB, every second).

The source is read in its own thread because OpenCV blocks for up to its read timeout; the loop
itself never blocks on the camera or on a consumer, so heartbeats keep flowing while a camera is
stalled and a dead inference process only costs counted drops.

Sockets (both bound by this process; consumers connect):

- ``capture-<camera>`` PUB: topics ``frame``, ``preview``, ``status``.
- ``snippets-<camera>`` PUSH: ``SnippetMessage``; PUSH (not PUB) so a full or absent consumer
  is visible as a failed non-blocking send and counted.

Run: ``python -m vadmon.capture.process --camera NAME --source SRC --ipc-dir DIR``.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import zmq

from vadmon.capture.snippet import SnippetAssembler, SnippetSettings
from vadmon.capture.source import ErrorKind, FrameSource, SourceError, open_source
from vadmon.capture.watchdog import Action, CameraState, Watchdog, WatchdogSettings, fingerprint
from vadmon.errors import VadmonError
from vadmon.redact import url_secrets
from vadmon.runtime.heartbeat import HeartbeatSender
from vadmon.runtime.link import FramePacker, LinkClient, open_client
from vadmon.runtime.logs import fields, setup_logging
from vadmon.runtime.messages import FrameHeader, PreviewFrame, SnippetMessage, Status
from vadmon.runtime.ring import CameraRing
from vadmon.runtime.status_schema import RateMeter
from vadmon.runtime.transport import (
    SendStats,
    SocketLimits,
    close_socket,
    ipc_dir,
    ipc_endpoint,
    publisher,
    pusher,
    send_message,
)

log = logging.getLogger("vadmon.capture.process")

# capture counter → the dashboard's heartbeat field name (vadmon.runtime.status_schema)
SCHEMA_NAMES = {
    "frames": "frames_total",
    "capture_fps": "fps",
    "snippet_drops": "snippet_drops_total",
    "reconnects": "reconnects_total",
    "stalls": "stalls_total",
    "snippets": "snippets_total",
}


@dataclass(frozen=True)
class CaptureSettings:
    camera: str
    # file path, rtsp://…, webcam index, or synthetic:… — may hold a password: not in repr
    source: str = field(repr=False)
    loop: bool = True
    open_timeout_ms: int = 10000
    read_timeout_ms: int = 5000
    ring_slots: int = 48
    snippet: SnippetSettings = field(default_factory=SnippetSettings)
    watchdog: WatchdogSettings = field(default_factory=WatchdogSettings)
    preview_fps: float = 2.0
    preview_width: int = 320
    jpeg_quality: int = 70
    status_interval_s: float = 1.0
    pub_hwm: int = 16
    snippet_hwm: int = 4


@dataclass(frozen=True)
class CaptureEndpoints:
    publish: str  # PUB: frame / preview / status
    snippets: str  # PUSH: snippet (bound ipc), or the tcp endpoint of ``link``
    link: LinkClient | None = None  # set: connect to a remote inference host, frames inline


def capture_endpoints(directory: str | Path, camera: str) -> CaptureEndpoints:
    return CaptureEndpoints(
        publish=ipc_endpoint(directory, f"capture-{camera}"),
        snippets=ipc_endpoint(directory, f"snippets-{camera}"),
    )


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


@dataclass
class Counters:
    frames: int = 0
    snippets: int = 0
    previews: int = 0
    ring_recreated: int = 0
    capture_fps: float = 0.0


class CaptureLoop:
    """State of one capture process; ``step()`` is one iteration of the loop."""

    def __init__(
        self,
        settings: CaptureSettings,
        pub: zmq.Socket,
        push: zmq.Socket,
        inline_frames: bool = False,
    ) -> None:
        self.settings = settings
        self.pub = pub
        self.push = push
        self.packer = FramePacker() if inline_frames else None
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

    def start(self) -> None:
        self._apply(self.watchdog.start(time.monotonic()))
        self._log_state_change()

    def step(self) -> None:
        if self.reader is not None:
            item = self.reader.take(0.05)
        else:  # waiting out a backoff
            item = None
            time.sleep(0.05)
        now = time.monotonic()
        if isinstance(item, SourceError):
            log.warning("camera %s: %s", self.settings.camera, item)
            self.error = str(item)[:200]
            self._apply(self.watchdog.on_error(now, item.kind.value))
        elif item is not None:
            frame, ts = item
            self._apply(self.watchdog.on_frame(now, frame.shape, self._thumb(frame)))
            if self.watchdog.state is CameraState.ONLINE:
                self._publish_frame(frame, ts, now)
        self._apply(self.watchdog.tick(now))
        self._log_state_change()
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
        elif not self.error and previous:
            self.error = self.watchdog.counters.last_error  # e.g. a stall: no source error
        reason = self.error
        extra = {"camera": self.settings.camera, "state": state, "previous": previous or "start"}
        if reason:
            extra["reason"] = reason
        log.info("camera state %s", state, extra=fields(**extra))

    def _thumb(self, frame: np.ndarray) -> np.ndarray | None:
        return fingerprint(frame) if self.settings.watchdog.frozen_timeout_s > 0 else None

    def _apply(self, action: Action) -> None:
        """Carry out what the watchdog decided: open or close the source."""
        state = self.watchdog.state.value
        if action is Action.DISCONNECT:
            self._stop_reader()
            log.warning(
                "camera %s: %s (%s); retry in %.1f s",
                self.settings.camera,
                state,
                self.watchdog.counters.last_error,
                self.watchdog.last_backoff_s,
            )
        elif action is Action.CONNECT:
            self._stop_reader()
            log.info("camera %s: connecting to %s", self.settings.camera, self.description)
            self.snippets.reset()
            self.reader = SourceReader(self._build_source())
            self.reader.start()

    def _build_source(self) -> FrameSource:
        s = self.settings
        source = open_source(
            s.source,
            loop=s.loop,
            open_timeout_ms=s.open_timeout_ms,
            read_timeout_ms=s.read_timeout_ms,
        )
        return source

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
        ring_name, slot = self.ring.write(frame, self.seq, ts)
        self.counters.ring_recreated += self.ring.recreated - before
        self.counters.frames += 1
        self.rate.add(now=now)
        if self.reader is not None:
            self.source_fps = self.reader.source.fps
        header = FrameHeader(
            camera=self.settings.camera,
            seq=self.seq,
            ts=ts,
            slot=slot,
            height=shape[0],
            width=shape[1],
            ring=ring_name,
            channels=shape[2],
            fps=self.source_fps,
            snippet_index=self.snippets.snippet_index,
        )
        send_message(self.pub, header, stats=self.pub_stats)
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

    def _send_snippet(self, snippet: SnippetMessage) -> None:
        if self.packer is None:
            send_message(self.push, snippet, stats=self.snippet_stats)
            return
        # tcp link: copy + resize only when the link can take the message right now
        packed = self.packer.pack(snippet) if self.push.poll(0, zmq.POLLOUT) else None
        if packed is None:
            self.snippet_stats.dropped += 1
            return
        send_message(self.push, packed[0], packed[1], self.snippet_stats)

    def _publish_preview(self, frame: np.ndarray, ts: float) -> None:
        height, width = frame.shape[:2]
        scale = min(1.0, self.settings.preview_width / width)
        small = cv2.resize(frame, (max(1, int(width * scale)), max(1, int(height * scale))))
        ok, jpeg = cv2.imencode(
            ".jpg", small, [cv2.IMWRITE_JPEG_QUALITY, self.settings.jpeg_quality]
        )
        if not ok:
            return
        msg = PreviewFrame(self.settings.camera, self.seq, ts, small.shape[0], small.shape[1])
        if send_message(self.pub, msg, jpeg.tobytes(), self.pub_stats):
            self.counters.previews += 1

    def _publish_status(self, now: float) -> None:
        fps = self.rate.rate(now)
        self.counters.capture_fps = fps or 0.0
        self._last_status = now
        wd = self.watchdog.counters
        skipped = self.source_skipped + (self.reader.skipped if self.reader else 0)
        counters = {
            "frames": self.counters.frames,
            "capture_fps": round(self.counters.capture_fps, 3),
            "source_fps": self.source_fps,
            "source_skipped": skipped,
            "snippets": self.counters.snippets,
            "snippets_sent": self.snippet_stats.sent,
            "snippet_drops": self.snippet_stats.dropped,
            "previews": self.counters.previews,
            "reconnects": wd.reconnects,
            "stalls": wd.stalls,
            "stalls_per_hour": self.watchdog.stalls_last_hour(now),
            "frozen": wd.frozen,
            "resolution_changes": wd.resolution_changes,
            "ring_recreated": self.counters.ring_recreated,
        }
        info = {
            "source": self.description,
            "last_error": wd.last_error,
            "errors": dict(wd.errors),
            "ring": self.ring.name,
            "height": self.shape[0],
            "width": self.shape[1],
            "retry_in_s": round(max(0.0, self.watchdog.next_attempt_at - now), 2),
            "error": self.error,
        }
        msg = Status(
            process="capture",
            ts=time.time(),
            camera=self.settings.camera,
            state=self.watchdog.state.value,
            counters={k: float(v) for k, v in counters.items()},
            info=info,
        )
        send_message(self.pub, msg, stats=self.pub_stats)
        if self.heartbeat is not None:
            schema = {SCHEMA_NAMES.get(k, k): v for k, v in msg.counters.items()}
            schema["fps"] = fps  # None until a real window has passed
            info = dict(msg.info, resolution=f"{self.shape[1]}x{self.shape[0]}")
            self.heartbeat.beat(camera=msg.camera, state=msg.state, counters=schema, info=info)

    def close(self) -> None:
        self._stop_reader()
        if self.packer is not None:
            self.packer.close()
        self.ring.close()
        if self.heartbeat is not None:
            self.heartbeat.close()


def open_source_description(settings: CaptureSettings) -> str:
    try:
        return open_source(settings.source).description
    except ValueError as exc:
        raise VadmonError(
            str(exc), "--source", "give a file, URL, webcam index or synthetic:"
        ) from None


def run_capture(
    settings: CaptureSettings, endpoints: CaptureEndpoints, stop: threading.Event
) -> int:
    """Capture until ``stop`` is set; always unlinks its ring and ipc files on the way out."""
    ctx = zmq.Context()
    pub = push = None
    loop: CaptureLoop | None = None
    try:
        pub = publisher(ctx, endpoints.publish, limits=SocketLimits(hwm=settings.pub_hwm))
        limits = SocketLimits(hwm=settings.snippet_hwm, kernel_buffer_bytes=16384)
        if endpoints.link is not None:
            push = open_client(ctx, endpoints.link, limits)
        else:
            push = pusher(ctx, endpoints.snippets, limits=limits)
        loop = CaptureLoop(settings, pub, push, inline_frames=endpoints.link is not None)
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
        ctx.term()
    return 0


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


# --- command line ---------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m vadmon.capture.process", description="vadmon capture process"
    )
    p.add_argument("--camera", required=True)
    p.add_argument("--config", default="", help="monitor config: takes this camera's settings")
    p.add_argument("--source", default="", help="file, rtsp://…, webcam index, synthetic:…")
    p.add_argument("--ipc-dir", default="", help="directory for ipc sockets (made 0700)")
    p.add_argument("--publish", default="", help="override the PUB endpoint")
    p.add_argument("--snippets", default="", help="override the snippet PUSH endpoint")
    p.add_argument("--no-loop", action="store_true", help="files: stop at the end")
    p.add_argument("--fps", type=float, default=0.0, help="snippet clock (0: every source frame)")
    p.add_argument("--frames-per-snippet", type=int, default=16)
    p.add_argument("--samples", type=int, default=1, help="frames per snippet to embed")
    p.add_argument("--ring-slots", type=int, default=48)
    p.add_argument("--preview-fps", type=float, default=2.0)
    p.add_argument("--preview-width", type=int, default=320)
    p.add_argument("--stall-timeout", type=float, default=5.0)
    p.add_argument("--connect-timeout", type=float, default=20.0)
    p.add_argument("--frozen-timeout", type=float, default=0.0, help="0 disables")
    p.add_argument("--backoff-base", type=float, default=0.5)
    p.add_argument("--backoff-max", type=float, default=60.0)
    p.add_argument("--open-timeout-ms", type=int, default=10000)
    p.add_argument("--read-timeout-ms", type=int, default=5000)
    p.add_argument("--log-level", default="INFO")
    return p


def settings_from_args(args: argparse.Namespace) -> CaptureSettings:
    try:
        snippet = SnippetSettings(args.frames_per_snippet, args.samples, args.fps)
    except ValueError as exc:
        raise VadmonError(str(exc), "snippet options", "fix the command line") from None
    watchdog = WatchdogSettings(
        stall_timeout_s=args.stall_timeout,
        connect_timeout_s=args.connect_timeout,
        backoff_base_s=args.backoff_base,
        backoff_max_s=args.backoff_max,
        frozen_timeout_s=args.frozen_timeout,
    )
    return CaptureSettings(
        camera=args.camera,
        source=args.source,
        loop=not args.no_loop,
        open_timeout_ms=args.open_timeout_ms,
        read_timeout_ms=args.read_timeout_ms,
        ring_slots=args.ring_slots,
        snippet=snippet,
        watchdog=watchdog,
        preview_fps=args.preview_fps,
        preview_width=args.preview_width,
    )


def _from_config(args: argparse.Namespace) -> tuple[CaptureSettings, CaptureEndpoints]:
    from vadmon.config import load_config
    from vadmon.monitor import camera_endpoints, capture_settings

    cfg = load_config(args.config)
    if args.camera not in cfg.cameras:
        raise VadmonError(f"camera {args.camera!r} is not in the config", args.config)
    return capture_settings(cfg, args.camera), camera_endpoints(cfg, args.camera)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not args.config and not args.source:
        parser.error("give --config or --source")
    preset: tuple[CaptureSettings, CaptureEndpoints] | None = None
    if args.config:
        try:
            preset = _from_config(args)
        except VadmonError as exc:
            print(f"vadmon capture: error: {exc.line()}", file=sys.stderr)
            return 2
        args.source = preset[0].source
    scrubber = StderrScrubber(url_secrets(args.source))
    scrubber.install()
    setup_logging(f"capture:{args.camera}", args.log_level)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    try:
        if preset is not None:
            settings, endpoints = preset
            ipc_dir(Path(endpoints.publish.removeprefix("ipc://")).parent)
        else:
            settings = settings_from_args(args)
            directory = ipc_dir(args.ipc_dir or None)
            endpoints = capture_endpoints(directory, args.camera)
            endpoints = CaptureEndpoints(
                publish=args.publish or endpoints.publish,
                snippets=args.snippets or endpoints.snippets,
            )
        code = run_capture(settings, endpoints, stop)
        log.info("camera %s: stopped", args.camera)
        return code
    except VadmonError as exc:
        print(f"vadmon capture: error: {exc.line()}", file=sys.stderr)
        return 2
    finally:
        scrubber.uninstall()


if __name__ == "__main__":
    exit_code = main()
    # A source thread may still be blocked inside FFmpeg (C++); letting the interpreter
    # finalise would cancel it mid-call and abort ("exception not rethrown"). Everything we own
    # (ring, sockets, ipc files) is already closed, so leave without finalisation.
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(exit_code)
