"""Snippets held back while no inference process is connected (its model is still loading).

Why: inference connects to a camera's snippet socket only once its model is ready (17–47 s for
ViT-B/16 on a loaded CPU). Until then every snippet used to be a silent drop, and an incident
in the first seconds after start was never scored. While no peer is connected each snippet's
sampled frames are copied out of the ring now (the ring will overwrite them) and kept, up to
``limit`` snippets; once a peer connects they are sent first, marked ``held`` (the inference
process scores them although they are older than its staleness bound), in order, then live
snippets follow. Beyond ``limit`` the oldest are dropped, counted and logged as "model loading".
A connected but slow consumer is never held for: there the latest snippet wins, as before;
and only the first start holds: once an inference process was connected, a later outage (a
crash, a restart) costs counted drops as before, so a capture never works off old backlogs.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections import deque

import zmq
from zmq.utils.monitor import recv_monitor_message

from vadmon.runtime.link import FramePacker
from vadmon.runtime.messages import SnippetMessage
from vadmon.runtime.transport import SendStats, send_message

log = logging.getLogger("vadmon.capture.hold")
_EVENTS = zmq.EVENT_ACCEPTED | zmq.EVENT_DISCONNECTED
# inference binds its score PUB when it connects to us; the alerts process's SUB needs a moment
# (reconnect + subscription) before a score published there reaches it, else the held
# snippets' scores are lost to the slow joiner: flush only this long after the first connect
FLUSH_GRACE_S = 2.0
# a consumer that connected but takes nothing for this long is stuck, not loading: the held
# snippets are dropped (counted as ordinary snippet drops) and the latest-wins path resumes
STUCK_S = 5.0


class SnippetHold:
    """Owns the PUSH socket's peer count (a socket monitor) and the held snippets."""

    def __init__(self, camera: str, push: zmq.Socket, limit: int) -> None:
        self.camera = camera
        self.push = push
        self.limit = limit
        self.held: deque[tuple[SnippetMessage, bytes]] = deque()
        self.peers = 0
        self.connected_once = False
        self.dropped = 0  # unscored: the hold was full while the model loaded
        self.sent_held = 0
        self.unpackable = 0  # a sampled frame was already overwritten in the ring
        self._monitor = push.get_monitor_socket(_EVENTS)
        self._packer = FramePacker()
        self._announced = False
        self._flush_after = 0.0
        self._last_progress = 0.0

    def _update_peers(self) -> None:
        while self._monitor.poll(0):
            event = recv_monitor_message(self._monitor)["event"]
            if event == zmq.EVENT_ACCEPTED:
                self.peers += 1
                if not self.connected_once:
                    self._flush_after = time.monotonic() + FLUSH_GRACE_S
                self.connected_once = True
            elif event == zmq.EVENT_DISCONNECTED:
                self.peers = max(0, self.peers - 1)

    def holding(self) -> bool:
        """True while snippets must be held: no consumer yet, or held ones still queued."""
        self._update_peers()
        return not self.connected_once or bool(self.held)

    def offer(self, snippet: SnippetMessage) -> None:
        """Keep ``snippet`` (frames copied now); the oldest goes when the hold is full."""
        if not self._announced:
            self._announced = True
            log.info(
                "camera %s: inference not connected yet (model loading): holding up to %d snippets",
                self.camera,
                self.limit,
            )
        packed = self._packer.pack(snippet)
        if packed is None:
            self.unpackable += 1
            return
        msg, payload = packed
        self.held.append((dataclasses.replace(msg, held=True), payload))
        if len(self.held) > self.limit:
            self.held.popleft()
            self.dropped += 1
            if self.dropped in (1, 10, 100) or self.dropped % 1000 == 0:
                log.warning(
                    "camera %s: %d snippet(s) unscored: model loading and the hold of %d is full",
                    self.camera,
                    self.dropped,
                    self.limit,
                )

    def flush(self, stats: SendStats) -> None:
        """Send held snippets, oldest first, as far as the consumer takes them now."""
        if not self.held:
            return
        self._update_peers()
        if self.peers == 0 or time.monotonic() < self._flush_after:
            return
        sent_before = self.sent_held
        while self.held and send_message(self.push, *self.held[0]):  # a refusal is no drop
            self.held.popleft()
            self.sent_held += 1
            stats.sent += 1
        now = time.monotonic()
        if self.sent_held > sent_before or self._last_progress == 0.0:
            self._last_progress = now
        elif self.held and now - self._last_progress > STUCK_S:
            log.warning(
                "camera %s: inference connected but takes nothing: %d held snippet(s) dropped",
                self.camera,
                len(self.held),
            )
            stats.dropped += len(self.held)
            self.held.clear()
            return
        if not self.held and self.sent_held > sent_before:
            self._announced = False
            log.info(
                "camera %s: inference ready: %d held snippet(s) sent, %d unscored (model loading)",
                self.camera,
                self.sent_held,
                self.dropped,
            )

    def counters(self) -> dict[str, int]:
        return {
            "held": len(self.held),
            "held_sent": self.sent_held,
            "model_loading_drops": self.dropped + self.unpackable,
        }

    def close(self) -> None:
        self.push.disable_monitor()
        self._monitor.close(linger=0)
        self._packer.close()
