"""The alert process: scores + previews in, events, snapshots, clips and webhooks out.

One entry function (``run_alerts``) and one loop: receive ScoreMessages and PreviewFrames, feed
the event logic, write the snapshot *before* queueing ``start``, cut the clip after post-roll,
and commit every webhook to the SQLite outbox; the delivery worker thread sends from there. The
loop itself never touches the network, so a slow receiver cannot delay alerting.

Restart safety: rows still ``pending`` in the outbox are sent by the next run with the same
webhook-id; events a killed run left open get an ``end`` marked ``interrupted``.
"""

from __future__ import annotations

import collections
import contextlib
import logging
import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import zmq

from vadmon.alerts import provisional as early
from vadmon.alerts.clip_writer import ClipSettings, ClipWriter
from vadmon.alerts.delivery import DeliverySettings, DeliveryWorker, new_msg_id
from vadmon.alerts.event import Event, EventMessage, EventSettings, EventTracker
from vadmon.alerts.lifecycle import EventRowState
from vadmon.alerts.mqtt_channel import MqttChannel
from vadmon.alerts.mqtt_client import MqttSettings
from vadmon.alerts.narrate import NarrateSettings, Narrator, keyframes
from vadmon.alerts.outbox import Outbox
from vadmon.alerts.payload import EventBodies, PayloadSettings
from vadmon.alerts.retention import MediaStore, RetentionSettings
from vadmon.alerts.scorelog import ScoreLogWriter
from vadmon.alerts.status_body import alert_status
from vadmon.alerts.webhook_url import UrlUnresolved, check_url
from vadmon.runtime import limits as fixed
from vadmon.runtime.heartbeat import TOPIC, Heartbeat, HeartbeatSender, decode_published
from vadmon.runtime.logs import fields
from vadmon.runtime.messages import MessageError, PreviewFrame, ScoreMessage
from vadmon.runtime.status_schema import AlertStatus, CaptureStatus
from vadmon.runtime.transport import SocketLimits, subscriber
from vadmon.runtime.zmq_context import process_context

log = logging.getLogger("vadmon.alerts")
SUB_LIMITS = SocketLimits(
    hwm=fixed.ALERT_SUB_HWM, linger_ms=0, max_msg_bytes=fixed.ALERT_SUB_MAX_MSG_BYTES
)


def log_event(ev: dict[str, Any], clip: str | None, reason: str) -> None:
    """One line per event message for service mode (journald, Loki), e.g. ``event start
    camera=door label=Fighting prob=0.81 score=0.93 snapshot=...``; JSON keeps them as keys."""
    keys = ("camera", "label", "prob", "score", "snapshot")
    extra = {k: ev[k] for k in keys if ev.get(k) is not None}
    if ev.get("duration") is not None:  # start lines too: how long it has lasted so far
        extra["duration_s"] = round(float(ev["duration"]), 1)
    extra.update({k: v for k, v in (("clip", clip), ("reason", reason)) if v})
    log.info("event %s", ev["kind"], extra=fields(**extra, event=ev["id"]))


@dataclass(frozen=True)
class AlertSettings:
    db_path: Path
    clips: ClipSettings
    events: EventSettings
    per_camera: dict[str, EventSettings]
    delivery: DeliverySettings
    retention: RetentionSettings
    heartbeat_s: float
    flush_s: float
    max_pending: int
    narrate: NarrateSettings | None  # None: no narration
    score_log: ScoreLogSettings | None  # None: no score logs
    mqtt: MqttSettings | None  # None: no MQTT (vadmon.alerts.mqtt_channel)
    payload: PayloadSettings  # links, text, instance, embedded snapshots
    provisional: dict[str, early.ProvisionalSettings]  # cameras with alerts.provisional on
    score_endpoint: str  # inference's scores PUB
    preview_endpoints: list[str]  # every camera's capture PUB (previews, status beats)


@dataclass(frozen=True)
class ScoreLogSettings:
    root: Path
    keep_hours: float


class AlertPipeline:
    """Everything except sockets and signals, so it can be driven directly."""

    def __init__(self, settings: AlertSettings) -> None:
        self.s = settings
        for ep in settings.delivery.endpoints:
            try:
                check_url(ep.url, ep.allow_private)
            except UrlUnresolved as exc:  # DNS down now: delivery retries, alerting goes on
                log.warning("webhook %s: %s; deliveries will retry", ep.name, exc)
        self.outbox = Outbox(settings.db_path, max_pending=settings.max_pending)
        # writes the outbox refused (full disk): kept in order and retried every tick
        self.unsaved: collections.deque[Callable[[], object]] = collections.deque()
        self.tracker = EventTracker(settings.events, settings.per_camera)
        self.early = early.ProvisionalStage(settings.provisional, self.tracker)
        self.media = MediaStore(settings.retention)
        self.clips = ClipWriter(settings.clips, self.media)
        self.next_prune = 0.0
        self.next_held = 0.0
        self.worker = DeliveryWorker(str(settings.db_path), settings.delivery)
        self.endpoints = settings.delivery.endpoints
        self.counters: dict[str, int] = collections.defaultdict(int)
        self.recent: collections.deque[dict[str, Any]] = collections.deque(
            maxlen=fixed.RECENT_MESSAGES
        )
        scores = settings.score_log
        self.score_log = ScoreLogWriter(scores.root, scores.keep_hours) if scores else None
        self.narrator = Narrator(settings.narrate) if settings.narrate else None
        self.narratives: collections.OrderedDict[str, str] = collections.OrderedDict()
        self.mqtt = MqttChannel(settings.mqtt, str(settings.db_path)) if settings.mqtt else None
        self.bodies = EventBodies(settings.payload)

    def start(self) -> None:
        if self.mqtt is not None:
            self.mqtt.start()
        self.media.sweep_temp()  # what a SIGKILL mid-clip left behind
        self._recover()
        self.worker.start()

    def _recover(self) -> None:
        """End the events a killed run left open, so receivers never wait for an end forever."""
        for data in self.outbox.open_events():
            if data.get("end_ts") is None:
                data["end_ts"] = data["start_ts"] + float(data.get("duration_s") or 0.0)
            data["reason"] = "interrupted: alert process restarted"
            self._enqueue("end", data, EventRowState.INTERRUPTED)
        early.deliver(self, self.early.recovered(early.left_pending(self.outbox.conn)))

    def on_message(self, parts: list[bytes]) -> None:
        try:
            msg, payload = decode_published(parts)
        except MessageError:
            self.counters["malformed"] += 1
            return
        if isinstance(msg, early.ProvisionalScore):  # a ScoreMessage too: never a final one
            early.deliver(self, self.early.on_provisional(msg, time.time()))
        elif isinstance(msg, ScoreMessage):
            self.counters["scores"] += 1
            if self.score_log is not None:
                self.score_log.write(msg)
            cam = self.tracker.camera(msg.camera)
            flooded = cam.counters["suppressed_rate"]
            self._handle(early.feed_final(self, msg))
            if cam.counters["suppressed_rate"] > flooded:
                log.warning("camera %s: event not sent: over the flood guard of %d per %g s "
                            "(counted)", msg.camera, cam.s.max_events_per_window,
                            cam.s.rate_window_s)  # fmt: skip
            if self.mqtt is not None:
                self.mqtt.on_score(msg, time.time())
        elif isinstance(msg, Heartbeat) and isinstance(msg.body, CaptureStatus):
            if self.mqtt is not None:
                self.mqtt.on_status(msg.body, time.time())
        elif isinstance(msg, PreviewFrame) and payload:
            self.counters["previews"] += 1
            self.clips.add(msg, payload)

    def tick(self, now: float) -> None:
        self._retry_unsaved()
        self._handle(self.tracker.expire(now))
        early.deliver(self, self.early.expire(now))
        if self.mqtt is not None:
            self.mqtt.tick(now)
        for event, clip in self.clips.poll(now):
            self._finish(event, clip)
        if now >= self.next_held:  # media of events whose webhooks are still to go out
            self.next_held = now + fixed.HELD_MEDIA_REFRESH_S
            self.media.held = frozenset(self.outbox.pending_event_ids())
        if now >= self.next_prune:
            self.prune(now)
        self._explained()

    def prune(self, now: float) -> None:
        """Retention by age and size (media and outbox); open events are never touched."""
        r = self.s.retention
        self.next_prune = now + r.interval_s
        self.media.held = frozenset(self.outbox.pending_event_ids())
        self.media.prune(now, self.clips.protected())
        before = None if r.events_max_age_s is None else now - r.events_max_age_s
        self.counters["outbox_pruned"] += self.outbox.prune(before, r.outbox_max_bytes)

    def _narrate(self, ev: Event) -> None:
        """Ask for a narrative once ``start`` is queued: snapshot first, then keyframes."""
        if self.narrator is None:
            return
        images = []
        if ev.snapshot_path:
            with contextlib.suppress(OSError):
                images.append(Path(ev.snapshot_path).read_bytes())
        ring = self.clips.rings.get(ev.camera, ())
        images += keyframes(list(ring), ev.start_ts, ev.peak_ts, self.narrator.s.keyframes)
        self.narrator.submit(ev.to_dict(), images)

    def _explained(self) -> None:
        """Queue an ``explained`` webhook per finished narration (never before its ``start``)."""
        if self.narrator is None:
            return
        for n in self.narrator.poll():
            event_id = n.event["id"]
            self.narratives[event_id] = n.narrative
            while len(self.narratives) > fixed.NARRATIVES_KEPT:
                self.narratives.popitem(last=False)
            stored = self.outbox.event(event_id)
            state, data = stored if stored else (EventRowState.OPEN, n.event)
            self._enqueue("explained", data, state)

    def shutdown(self) -> None:
        self._handle(self.tracker.close_all("alert process shutting down"))
        early.deliver(self, self.early.close_all("alert process shutting down"))
        for event, clip in self.clips.flush():
            self._finish(event, clip)
        self._retry_unsaved()
        if self.unsaved:
            log.error("%d outbox writes could not be stored (disk full?)", len(self.unsaved))
        self.worker.stop(self.s.flush_s)
        if self.mqtt is not None:
            self.mqtt.stop(self.s.flush_s)
        self.clips.close()
        if self.narrator is not None:
            self.narrator.close()
        if self.score_log is not None:
            self.score_log.close()
        self.outbox.close()

    def _handle(self, messages: list[EventMessage]) -> None:
        for m in messages:
            ev = m.event
            if m.kind == "start":
                ev.snapshot_path = self.clips.snapshot(ev)  # on disk before start is queued
                self.clips.begin(ev)
                self._enqueue("start", self.early.start_data(ev.to_dict()), EventRowState.OPEN)
                self._narrate(ev)
            elif m.kind == "flooded":  # kept for `vadmon events`, with its snapshot; not sent
                ev.snapshot_path = self.clips.snapshot(ev)
                data = ev.to_dict()
                self._store(
                    lambda data=data: self.outbox.record_event(data, EventRowState.SUPPRESSED)
                )
            elif m.kind == "update":
                ev.snapshot_path = self.clips.snapshot(ev)  # the peak may have moved
                self._enqueue("update", ev.to_dict(), EventRowState.OPEN)
            else:
                ev.snapshot_path = self.clips.snapshot(ev)
                data = ev.to_dict()
                self._store(lambda data=data: self.outbox.record_event(data, EventRowState.ENDING))
                self.clips.end(ev)

    def _finish(self, event: Event, clip: str | None) -> None:
        event.clip_path = clip
        self._enqueue("end", event.to_dict(), EventRowState.CLOSED)

    def _enqueue(self, kind: str, data: dict[str, Any], state: EventRowState) -> None:
        narrative = self.narratives.get(data.get("id", ""))
        if narrative is not None:
            data["explanation"] = dict(data.get("explanation") or {}, narrative=narrative)
        data = self.bodies.with_links(data)
        recent = {
            "id": data.get("id", ""),
            "camera": data.get("camera", ""),
            "label": data.get("label", ""),
            "prob": data.get("label_prob", 0.0),
            "score": data.get("peak_score"),
            "start": data.get("start_ts", 0.0),
            "duration": data.get("duration_s", 0.0),
            "kind": kind,
            "snapshot": data.get("snapshot_path"),
            "text": (data.get("explanation") or {}).get("text", "")[:200],
        }
        self.recent.appendleft(recent)
        log_event(recent, data.get("clip_path"), data.get("reason") or "")
        msg_id = new_msg_id()
        targets = [ep.name for ep in self.endpoints if ep.wants(kind)]  # webhook `events`
        body, own = self.bodies.bodies(kind, data, targets)
        mqtt_rows = self.mqtt.rows(kind, body) if self.mqtt is not None else []

        def write() -> None:  # idempotent (INSERT OR IGNORE): safe to retry as a whole
            self.outbox.enqueue(data, kind, msg_id, body, targets, state=state, own=own)
            for row_id, endpoint, payload in mqtt_rows:  # MQTT: one row per publish
                self.outbox.enqueue(data, kind, row_id, payload, [endpoint], state=state)

        self._store(write)
        self.counters["queued"] += 1
        self.counters[f"queued_{kind}"] += 1
        self.worker.wake()
        if self.mqtt is not None:
            self.mqtt.wake()

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

    def status(self) -> AlertStatus:
        """The ``alerts`` heartbeat body (``alerts/status_body.py``), sent as is."""
        return alert_status(self)


def open_subscriber(
    ctx: zmq.Context, score_endpoint: str, preview_endpoints: list[str]
) -> zmq.Socket:
    """One SUB connected to the scores PUB and every camera's capture PUB: scores, previews and
    capture's status beats (camera state for MQTT's ``state``); and provisional scores."""
    endpoints = list(dict.fromkeys([score_endpoint, *preview_endpoints]))
    topics = (ScoreMessage.topic, early.ProvisionalScore.topic, PreviewFrame.topic, TOPIC)
    sub = subscriber(ctx, endpoints[0], limits=SUB_LIMITS, topics=topics)
    for endpoint in endpoints[1:]:
        sub.connect(endpoint)
    return sub


def run_alerts(settings: AlertSettings, stop: threading.Event) -> int:
    """Run until ``stop`` (SIGTERM/SIGINT, ``runtime/entry``), then close open events, flush,
    and return 0."""
    pipeline = AlertPipeline(settings)
    ctx = process_context()
    sub = open_subscriber(ctx, settings.score_endpoint, settings.preview_endpoints)
    poller = zmq.Poller()
    poller.register(sub, zmq.POLLIN)
    pipeline.start()
    heartbeat = HeartbeatSender.from_env()
    next_beat = 0.0
    try:
        while not stop.is_set():
            if poller.poll(fixed.ALERT_POLL_MS):
                for _ in range(fixed.ALERT_BATCH):
                    try:
                        parts = sub.recv_multipart(zmq.NOBLOCK)
                    except zmq.Again:
                        break
                    pipeline.on_message(parts)
            now = time.time()
            pipeline.tick(now)
            if now >= next_beat:
                if heartbeat is not None:
                    heartbeat.beat_built(pipeline.status)
                next_beat = now + settings.heartbeat_s
    finally:
        pipeline.shutdown()
        sub.close(0)
        if heartbeat is not None:
            heartbeat.close()
    return 0
