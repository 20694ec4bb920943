"""The MQTT channel as the alert loop sees it: event rows to commit, states to update.

Runs in the alert loop's thread and never touches the network (``MqttWorker`` does). Per
event message it returns the outbox rows to store with the webhook rows (``<prefix>/events``
always, ``<prefix>/<camera>/event`` for a new event, Home Assistant's event entity), and it
keeps the retained per-camera states: ``anomaly`` ON/OFF, ``label``, ``snapshot`` (JPEG),
``state`` (from the capture processes' status messages), and ``score`` at most once per
``score_interval_s``. Peers are not trusted: only configured cameras get topics.
"""

from __future__ import annotations

import collections
import json
from pathlib import Path
from typing import Any

from vadmon.alerts.delivery import new_msg_id
from vadmon.alerts.mqtt_client import MqttSettings
from vadmon.alerts.mqtt_discovery import camera_configs
from vadmon.alerts.mqtt_state import StateStore
from vadmon.alerts.mqtt_topics import (
    Topics,
    camera_event,
    camera_state,
    frigate_event,
    score_text,
    webhook_data,
)
from vadmon.alerts.mqtt_worker import MqttWorker, endpoint_for
from vadmon.runtime.messages import ScoreMessage
from vadmon.runtime.status_schema import CaptureStatus

MAX_SNAPSHOT_BYTES = 2 << 20  # bigger snapshot files are not sent (the broker may refuse them)
MAX_TRACKED_EVENTS = 256  # events whose last "after" is kept as the next "before"
MAX_EVENT_TYPES = 64


class MqttChannel:
    """Called by ``AlertPipeline`` only; ``worker`` publishes in its own thread."""

    def __init__(self, s: MqttSettings, db_path: str) -> None:
        self.s = s
        self.topics = Topics(s.topic_prefix)
        self.store = StateStore()
        self.worker = MqttWorker(s, db_path, self.store)
        self._after: collections.OrderedDict[str, dict[str, Any]] = collections.OrderedDict()
        self._classes: dict[str, tuple[str, ...]] = {}
        self._next_score: dict[str, float] = {}
        self._last_status: dict[str, float] = {}
        self.counters: dict[str, int] = collections.defaultdict(int)
        for camera in s.cameras:
            self.store.set(self.topics.camera(camera, "anomaly"), "OFF")
            self._discover(camera)

    def start(self) -> None:
        self.worker.start()

    def stop(self, flush_s: float) -> None:
        self.worker.stop(flush_s)

    def wake(self) -> None:
        self.worker.wake()

    # --- events -----------------------------------------------------------------------------

    def rows(self, kind: str, body: str) -> list[tuple[str, str, str]]:
        """(msg_id, endpoint, payload) rows for one webhook message (its stored body, so MQTT
        carries exactly what the webhook does), and the camera's retained states."""
        after = webhook_data(body)
        event_id, camera = str(after.get("id", "")), str(after.get("camera", ""))
        before = self._after.pop(event_id, after)
        if kind not in ("end", "withdrawn"):
            self._after[event_id] = after
            while len(self._after) > MAX_TRACKED_EVENTS:
                self._after.popitem(last=False)
        out = [(new_msg_id(), endpoint_for(self.topics.events), frigate_event(kind, before, after))]
        if camera in self.s.cameras and kind not in ("provisional", "withdrawn"):  # events only
            if kind == "start":
                topic = self.topics.camera(camera, "event")
                out.append((new_msg_id(), endpoint_for(topic), camera_event(after)))
            self._event_states(kind, camera, after)
        self.counters["mqtt_rows"] += len(out)
        return out

    def _event_states(self, kind: str, camera: str, data: dict[str, Any]) -> None:
        # a narration may come after the end: the event's own end time decides, not the kind
        ongoing = kind != "end" and data.get("end_ts") is None
        self.store.set(self.topics.camera(camera, "anomaly"), "ON" if ongoing else "OFF")
        if data.get("label"):
            self.store.set(self.topics.camera(camera, "label"), str(data["label"]))
        snapshot = self._snapshot(data.get("snapshot_path"))
        if snapshot is not None:
            self.store.set(self.topics.camera(camera, "snapshot"), snapshot)

    def _snapshot(self, path: object) -> bytes | None:
        if not isinstance(path, str) or not path:
            return None
        try:
            with Path(path).open("rb") as f:
                data = f.read(MAX_SNAPSHOT_BYTES + 1)
        except OSError:
            self.counters["mqtt_snapshot_errors"] += 1
            return None
        if len(data) > MAX_SNAPSHOT_BYTES:
            self.counters["mqtt_snapshot_too_big"] += 1
            return None
        return data

    # --- scores and camera states -----------------------------------------------------------

    def on_score(self, msg: ScoreMessage, now: float) -> None:
        """The score (rate-limited) and, the first time or when they change, the class names
        as the event entity's ``event_types``."""
        camera = msg.camera
        if camera not in self.s.cameras:
            return
        names = tuple(n for n in msg.class_names if n != self.s.normal_label)[:MAX_EVENT_TYPES]
        if names and names != self._classes.get(camera):
            self._classes[camera] = names
            self._discover(camera)
        if now >= self._next_score.get(camera, 0.0):
            self._next_score[camera] = now + self.s.score_interval_s
            self.store.set(self.topics.camera(camera, "score"), score_text(msg.score), False)
            self.worker.wake()

    def on_status(self, body: CaptureStatus, now: float) -> None:
        """A capture process's heartbeat body (the one capture publishes): its camera's state
        and why."""
        if body.camera not in self.s.cameras:
            return
        reason = body.info.error or body.info.last_error or ""
        self._last_status[body.camera] = now
        state = body.state.value if body.state is not None else "unknown"
        self._set_state(body.camera, state, reason, now)

    def tick(self, now: float) -> None:
        """A camera whose capture process went quiet is ``offline`` (honest, not last-known)."""
        for camera, seen in self._last_status.items():
            if now - seen > self.s.status_stale_s:
                quiet = f"no status from its capture process for {self.s.status_stale_s:g} s"
                self._set_state(camera, "offline", quiet, seen)

    def _set_state(self, camera: str, state: str, reason: str, ts: float) -> None:
        topic = self.topics.camera(camera, "state")
        old = self.store.get(topic)
        if old is not None:
            prev = json.loads(old)
            if (prev.get("state"), prev.get("reason")) == (state, reason[:200]):
                return  # unchanged: no new retained message every second
        self.store.set(topic, camera_state(state, reason, ts))
        self.worker.wake()

    def _discover(self, camera: str) -> None:
        if not self.s.discovery:
            return
        classes = list(self._classes.get(camera, ()))
        for topic, config in camera_configs(
            self.s.discovery_prefix, self.topics, camera, classes
        ).items():
            self.store.set(topic, config)

    def status_counters(self) -> dict[str, float]:
        out: dict[str, float] = dict(self.counters)
        out.update({f"mqtt_{k}": v for k, v in self.worker.counters().items()})
        return out
