"""The alert process: scores + previews in, events, snapshots, clips and webhooks out.

One entry function (``run_alerts``) and one loop: receive ScoreMessages and PreviewFrames, feed
the event logic, write the snapshot *before* queueing ``start``, cut the clip after post-roll,
and commit every webhook to the SQLite outbox; the delivery worker thread sends from there. The
loop itself never touches the network, so a slow receiver cannot delay alerting.

Restart safety: rows still ``pending`` in the outbox are sent by the next run with the same
webhook-id; events a killed run left open get an ``end`` marked ``interrupted``.
"""

from __future__ import annotations

import argparse
import collections
import logging
import os
import signal
import sqlite3
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import zmq

from vadmon.alerts.clip_writer import ClipSettings, ClipWriter
from vadmon.alerts.delivery import (
    DeliverySettings,
    DeliveryWorker,
    Endpoint,
    LookupFailed,
    build_body,
    check_url,
    new_msg_id,
)
from vadmon.alerts.event import Event, EventMessage, EventSettings, EventTracker
from vadmon.alerts.outbox import Outbox
from vadmon.errors import VadmonError
from vadmon.runtime.heartbeat import HeartbeatSender
from vadmon.runtime.messages import MessageError, PreviewFrame, ScoreMessage, Status, decode

log = logging.getLogger("vadmon.alerts.process")
MAX_BATCH = 500


@dataclass(frozen=True)
class AlertSettings:
    db_path: Path
    clips: ClipSettings
    events: EventSettings = field(default_factory=EventSettings)
    per_camera: dict[str, EventSettings] = field(default_factory=dict)
    delivery: DeliverySettings = field(default_factory=DeliverySettings)
    heartbeat_s: float = 1.0
    flush_s: float = 3.0
    max_pending: int = 10_000


class AlertPipeline:
    """Everything except sockets and signals, so it can be driven directly."""

    def __init__(self, settings: AlertSettings) -> None:
        self.s = settings
        for ep in settings.delivery.endpoints:
            try:
                check_url(ep.url, ep.allow_private)
            except LookupFailed as exc:  # DNS down now: delivery retries, alerting goes on
                log.warning("webhook %s: %s; deliveries will retry", ep.name, exc)
        self.outbox = Outbox(settings.db_path, max_pending=settings.max_pending)
        # writes the outbox refused (full disk): kept in order and retried every tick
        self.unsaved: collections.deque[Callable[[], object]] = collections.deque()
        self.tracker = EventTracker(settings.events, settings.per_camera)
        self.clips = ClipWriter(settings.clips)
        self.worker = DeliveryWorker(str(settings.db_path), settings.delivery)
        self.endpoints = [ep.name for ep in settings.delivery.endpoints]
        self.counters: dict[str, int] = collections.defaultdict(int)
        self.recent: collections.deque[dict[str, Any]] = collections.deque(maxlen=40)

    def start(self) -> None:
        self._recover()
        self.worker.start()

    def _recover(self) -> None:
        """End the events a killed run left open, so receivers never wait for an end forever."""
        for data in self.outbox.open_events():
            if data.get("end_ts") is None:
                data["end_ts"] = data["start_ts"] + float(data.get("duration_s") or 0.0)
            data["reason"] = "interrupted: alert process restarted"
            self._enqueue("end", data, "interrupted")

    def on_message(self, parts: list[bytes]) -> None:
        try:
            msg, payload = decode(parts)
        except MessageError:
            self.counters["malformed"] += 1
            return
        if isinstance(msg, ScoreMessage):
            self.counters["scores"] += 1
            self._handle(self.tracker.feed(msg))
        elif isinstance(msg, PreviewFrame) and payload:
            self.counters["previews"] += 1
            self.clips.add(msg, payload)

    def tick(self, now: float) -> None:
        self._retry_unsaved()
        self._handle(self.tracker.expire(now))
        for event, clip in self.clips.poll(now):
            self._finish(event, clip)

    def shutdown(self) -> None:
        self._handle(self.tracker.close_all("alert process shutting down"))
        for event, clip in self.clips.flush():
            self._finish(event, clip)
        self._retry_unsaved()
        if self.unsaved:
            log.error("%d outbox writes could not be stored (disk full?)", len(self.unsaved))
        self.worker.stop(self.s.flush_s)
        self.clips.close()
        self.outbox.close()

    def _handle(self, messages: list[EventMessage]) -> None:
        for m in messages:
            ev = m.event
            if m.kind == "start":
                ev.snapshot_path = self.clips.snapshot(ev)  # on disk before start is queued
                self.clips.begin(ev)
                self._enqueue("start", ev.to_dict(), "open")
            elif m.kind == "update":
                self._enqueue("update", ev.to_dict(), "open")
            else:
                data = ev.to_dict()
                self._store(lambda data=data: self.outbox.record_event(data, "ending"))
                self.clips.end(ev)

    def _finish(self, event: Event, clip: str | None) -> None:
        event.clip_path = clip
        self._enqueue("end", event.to_dict(), "closed")

    def _enqueue(self, kind: str, data: dict[str, Any], state: str) -> None:
        self.recent.appendleft(
            {
                "id": data.get("id", ""),
                "camera": data.get("camera", ""),
                "label": data.get("label", ""),
                "prob": data.get("label_prob", 0.0),
                "start": data.get("start_ts", 0.0),
                "duration": data.get("duration_s", 0.0),
                "kind": kind,
            }
        )
        body, msg_id = build_body(kind, data), new_msg_id()
        self._store(
            lambda: self.outbox.enqueue(data, kind, msg_id, body, self.endpoints, state=state)
        )
        self.counters["queued"] += 1
        self.counters[f"queued_{kind}"] += 1
        self.worker.wake()

    def _store(self, write: Callable[[], object]) -> None:
        """Run an outbox write now, or keep it (in order) for the next tick when SQLite refuses
        it: a full disk must delay alerts, not crash-loop the process and lose the open
        event's ``end``."""
        self.unsaved.append(write)
        self._retry_unsaved()

    def _retry_unsaved(self) -> None:
        while self.unsaved:
            try:
                self.unsaved[0]()
            except sqlite3.Error as exc:
                self.counters["outbox_errors"] += 1
                if self.counters["outbox_errors"] == 1 or len(self.unsaved) == 1:
                    log.warning("outbox %s: %s; kept in memory, retrying", self.s.db_path, exc)
                return
            self.unsaved.popleft()

    def status(self) -> Status:
        counters: dict[str, float] = {}
        for source in (
            self.counters,
            self.tracker.counters(),
            self.clips.counters,
            {f"deliveries_{k}": v for k, v in self.worker.counters().items()},
            {f"outbox_{k}": v for k, v in self.outbox.counts().items()},
        ):
            counters.update(source)
        open_events = sum(cam.open_event is not None for cam in self.tracker.cameras.values())
        outbox = self.outbox.counts()
        # the dashboard's field names (vadmon.runtime.status_schema)
        counters.update(
            outbox_unsaved=len(self.unsaved),
            pending=outbox.get("pending", 0),
            delivered=outbox.get("delivered", 0),
            dead=outbox.get("dead", 0),
            events_total=self.counters.get("queued_start", 0),
        )
        seen: dict[str, dict[str, Any]] = {}
        for ev in self.recent:  # newest message per event
            seen.setdefault(ev["id"], ev)
        return Status(
            process="alerts",
            ts=time.time(),
            state="running",
            counters=counters,
            info={"open_events": open_events, "recent_events": list(seen.values())[:10]},
        )


def open_sockets(
    ctx: zmq.Context,
    score_endpoint: str,
    preview_endpoint: str | list[str],
    status_endpoint: str | None,
) -> tuple[zmq.Socket, zmq.Socket | None]:
    """Minimal pyzmq wiring (the lead may swap in vadmon.runtime.transport): SUB in, PUB heartbeat out."""
    sub = ctx.socket(zmq.SUB)
    sub.setsockopt(zmq.LINGER, 0)
    sub.setsockopt(zmq.RCVHWM, 10_000)
    sub.setsockopt(zmq.MAXMSGSIZE, 16 * 1024 * 1024)
    sub.setsockopt(zmq.SUBSCRIBE, ScoreMessage.topic)
    sub.setsockopt(zmq.SUBSCRIBE, PreviewFrame.topic)
    previews = [preview_endpoint] if isinstance(preview_endpoint, str) else preview_endpoint
    for endpoint in dict.fromkeys([score_endpoint, *previews]):
        sub.connect(endpoint)
    pub = None
    if status_endpoint:
        pub = ctx.socket(zmq.PUB)
        pub.setsockopt(zmq.LINGER, 0)
        pub.setsockopt(zmq.SNDHWM, 100)
        pub.connect(status_endpoint)
    return sub, pub


def run_alerts(
    settings: AlertSettings,
    score_endpoint: str,
    preview_endpoint: str | list[str],
    status_endpoint: str | None = None,
    stop: threading.Event | None = None,
) -> int:
    """Run until SIGTERM/SIGINT (or ``stop``), then close open events, flush, and return 0."""
    stop = stop or threading.Event()
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: stop.set())
    pipeline = AlertPipeline(settings)
    ctx = zmq.Context.instance()
    sub, pub = open_sockets(ctx, score_endpoint, preview_endpoint, status_endpoint)
    poller = zmq.Poller()
    poller.register(sub, zmq.POLLIN)
    pipeline.start()
    heartbeat = HeartbeatSender.from_env(ctx)
    next_beat = 0.0
    try:
        while not stop.is_set():
            if poller.poll(100):
                for _ in range(MAX_BATCH):
                    try:
                        parts = sub.recv_multipart(zmq.NOBLOCK)
                    except zmq.Again:
                        break
                    pipeline.on_message(parts)
            now = time.time()
            pipeline.tick(now)
            if now >= next_beat:
                status = pipeline.status()
                if pub is not None:
                    pub.send_multipart(status.to_parts(), zmq.NOBLOCK)
                if heartbeat is not None:
                    heartbeat.beat(state=status.state, counters=status.counters, info=status.info)
                next_beat = now + settings.heartbeat_s
    finally:
        pipeline.shutdown()
        sub.close(0)
        if pub is not None:
            pub.close(0)
        if heartbeat is not None:
            heartbeat.close()
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m vadmon.alerts.process", description=__doc__.splitlines()[0]
    )
    p.add_argument("--config", type=Path, help="monitor config (replaces the options below)")
    p.add_argument("--db", type=Path, help="SQLite outbox/event log")
    p.add_argument("--media-dir", type=Path, help="snapshots and clips go here")
    p.add_argument("--scores", help="ZeroMQ endpoint publishing ScoreMessages")
    p.add_argument("--previews", help="ZeroMQ endpoint publishing PreviewFrames")
    p.add_argument("--status", default=None, help="ZeroMQ endpoint to send heartbeats to")
    p.add_argument("--webhook", action="append", default=[], help="receiver URL (repeatable)")
    p.add_argument("--secret-env", default="VADMON_WEBHOOK_SECRET", help="env var with whsec_…")
    p.add_argument("--allow-private", action="store_true", help="allow loopback/private URLs")
    p.add_argument("--threshold", type=float, default=0.5)
    p.add_argument("--hysteresis", type=float, default=0.1)
    p.add_argument("--min-duration", type=float, default=1.0)
    p.add_argument("--cutoff", type=float, default=2.0)
    p.add_argument("--cooldown", type=float, default=30.0)
    p.add_argument("--smoothing", choices=["ema", "median", "none"], default="ema")
    p.add_argument("--smoothing-k", type=int, default=3)
    p.add_argument("--update-interval", type=float, default=5.0)
    p.add_argument("--pre", type=float, default=5.0)
    p.add_argument("--post", type=float, default=5.0)
    p.add_argument("--max-attempts", type=int, default=8)
    p.add_argument("--backoff-base", type=float, default=2.0)
    p.add_argument("--deadline", type=float, default=10.0, help="per-attempt wall-clock limit")
    p.add_argument("--flush", type=float, default=3.0, help="seconds to keep sending on exit")
    return p


def settings_from_args(args: argparse.Namespace) -> AlertSettings:
    secret = os.environ.get(args.secret_env, "")
    if args.webhook and not secret:
        raise VadmonError(
            f"environment variable {args.secret_env} is not set", "--secret-env", "export whsec_…"
        )
    endpoints = tuple(
        Endpoint(f"webhook{i}" if i else "default", url, (secret,), args.allow_private)
        for i, url in enumerate(args.webhook)
    )
    try:
        events = EventSettings(
            threshold=args.threshold,
            hysteresis=args.hysteresis,
            min_duration_s=args.min_duration,
            cutoff_s=args.cutoff,
            cooldown_s=args.cooldown,
            smoothing=args.smoothing,
            smoothing_k=args.smoothing_k,
            update_interval_s=args.update_interval,
        )
    except ValueError as exc:
        raise VadmonError(str(exc), "event settings") from None
    return AlertSettings(
        db_path=args.db,
        clips=ClipSettings(args.media_dir, pre_s=args.pre, post_s=args.post),
        events=events,
        delivery=DeliverySettings(
            endpoints=endpoints,
            max_attempts=args.max_attempts,
            backoff_base_s=args.backoff_base,
            attempt_deadline_s=args.deadline,
        ),
        flush_s=args.flush,
    )


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        if args.config:
            from vadmon.config import load_config
            from vadmon.monitor import alert_settings, camera_endpoints, score_endpoint

            cfg = load_config(args.config)
            previews = [camera_endpoints(cfg, c).publish for c in cfg.enabled_cameras()]
            return run_alerts(alert_settings(cfg), score_endpoint(cfg), previews)
        if not (args.db and args.media_dir and args.scores and args.previews):
            parser.error("give --config, or all of --db --media-dir --scores --previews")
        settings = settings_from_args(args)
        return run_alerts(settings, args.scores, args.previews, args.status)
    except VadmonError as exc:
        print(f"vadmon alerts: error: {exc.line()}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
