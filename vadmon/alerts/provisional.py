"""Provisional alerts: an early ``provisional`` event from the lookahead-0 score, then the
normal ``start`` (same event id: confirmed) or a ``withdrawn`` message.

Schema (docs/MONITOR.md, "Provisional alerts"), on every channel through the same outbox path
as the other event messages:

- ``vadmon.event.provisional``: ``data`` is an event (id, camera, start_ts = the snippet's
  start, peak_score = its lookahead-0 score, label, …) with ``state: "provisional"``.
- confirmed: the final scores open the normal event; its ``start`` (and every later
  ``update``/``end``) carries the provisional's id, and ``start`` adds ``data.provisional``
  (``issued_at``, ``score``, ``gained_s`` = how much earlier the provisional went out).
- ``vadmon.event.withdrawn``: same id, ``state: "withdrawn"``, ``reason`` says why.

Rules, per camera (``CameraEvents`` stays the only judge of real events):

- open: the raw lookahead-0 score ≥ ``threshold``, no provisional pending, no event open or
  suppressed on the camera, the top label neither ignored nor in cooldown. At most one pending
  provisional per camera: state is bounded by the configured cameras.
- confirm: the camera's final scores emit ``start`` while it is pending.
- withdraw: a final score at or after the provisional's snippet is below ``alerts.threshold``
  with no candidate left (a high one waits: smoothing may lag a snippet), or the candidate is
  suppressed, or ``flooded``, no final score for ``stale_s``, shutdown, or the alert process
  restarted with one stored pending.

Pure like ``alerts.event``: time is passed in, so ``vadmon eval --causal`` replays it exactly.
"""

from __future__ import annotations

import collections
import json
import math
import time
from dataclasses import dataclass, replace
from typing import Any, Literal

from vadmon.alerts.event import CameraEvents, Event, EventMessage, EventTracker, new_event_id
from vadmon.alerts.lifecycle import EventPhase, EventRowState
from vadmon.runtime.messages import ProvisionalScore, ScoreMessage

__all__ = ["ProvisionalScore", "ProvisionalSettings", "ProvisionalStage", "deliver", "feed_final"]

ProvisionalKind = Literal["provisional", "withdrawn"]
KINDS = ("provisional", "withdrawn")
MAX_CONFIRMED = 256  # confirmed ids kept until their ``start`` is queued


@dataclass(frozen=True)
class ProvisionalSettings:
    """One camera's ``alerts.provisional`` (only enabled cameras have one)."""

    threshold: float


@dataclass(frozen=True)
class ProvisionalMessage:
    kind: ProvisionalKind
    event: Event


@dataclass
class _Pending:
    event: Event
    index: int  # snippet whose lookahead-0 score opened it
    issued: float  # when it was sent (the caller's clock)


def _state(cam: CameraEvents) -> str:
    """``none`` | ``candidate`` | ``suppressed`` | ``open``: the one place that reads the
    event machine's inner state."""
    cur = cam.cur
    if cur is None or cur.phase is EventPhase.CLOSED:
        return "none"
    return str(cur.phase)  # candidate | open | suppressed (``EventPhase``)


class ProvisionalStage:
    """The provisional events of every camera that has ``alerts.provisional`` on."""

    def __init__(self, settings: dict[str, ProvisionalSettings], tracker: EventTracker) -> None:
        self.settings = dict(settings)
        self.tracker = tracker
        self.pending: dict[str, _Pending] = {}
        self.last_final: dict[str, float] = {}
        self.confirmed: collections.OrderedDict[str, dict] = collections.OrderedDict()
        self.counters: dict[str, int] = collections.defaultdict(int)

    def on_provisional(self, msg: ScoreMessage, now: float) -> list[ProvisionalMessage]:
        """A lookahead-0 score: maybe a new provisional event."""
        s = self.settings.get(msg.camera)
        if s is None or msg.camera in self.pending or msg.score < s.threshold:
            return []
        cam = self.tracker.camera(msg.camera)
        if _state(cam) in ("open", "suppressed"):
            return []
        label, prob = msg.top_class((cam.s.normal_label,))
        if label.lower() in cam.ignored or msg.t_start < cam.cooldown_until.get(label, -math.inf):
            self.counters["provisional_skipped"] += 1
            return []
        ev = Event(
            id=new_event_id(msg.t_start, msg.camera, cam.rng), camera=msg.camera,
            start_ts=msg.t_start, end_ts=None, duration_s=0.0, peak_score=round(msg.score, 4),
            peak_ts=(msg.t_start + msg.t_end) / 2, label=label, label_prob=round(prob, 4),
            top3=[(label, round(prob, 4))], text="", snippets=1, mode=msg.mode,
            reason="provisional: lookahead-0 score, not yet confirmed",
        )  # fmt: skip
        ev.text = f"provisional: {label} ({prob:.2f}) on {msg.camera}, score {msg.score:.2f}"
        self.pending[msg.camera] = _Pending(ev, msg.snippet_index, now)
        self.counters["provisional_opened"] += 1
        return [ProvisionalMessage("provisional", ev)]

    def after_final(
        self, msg: ScoreMessage, events: list[EventMessage], now: float
    ) -> list[ProvisionalMessage]:
        """A final score and what the event machine made of it: a ``start`` confirms the
        pending provisional (the start takes its id); no candidate left withdraws it."""
        if msg.camera in self.settings:  # bounded: configured cameras only
            self.last_final[msg.camera] = now
        p = self.pending.get(msg.camera)
        if p is None:
            return []
        for m in events:
            if m.kind == "start":
                return self._confirm(msg.camera, p, m.event, now)
            if m.kind == "flooded":
                return self._withdraw(msg.camera, "the event was held back by the flood guard")
        cam = self.tracker.camera(msg.camera)
        state = _state(cam)
        if msg.snippet_index < p.index:
            return []
        if state == "suppressed":
            return self._withdraw(msg.camera, "suppressed (cooldown or ignored label)")
        if state == "none" and msg.score < cam.s.threshold:  # a high raw score: smoothing lags
            return self._withdraw(msg.camera, "the final scores did not open an event")
        return []

    def start_data(self, data: dict) -> dict:
        """The ``start`` body's data, with ``provisional`` when it confirmed one."""
        info = self.confirmed.pop(str(data.get("id", "")), None)
        return data if info is None else {**data, "provisional": info}

    def expire(self, now: float) -> list[ProvisionalMessage]:
        """Withdraw a provisional whose camera sent no final score for ``stale_s``."""
        out: list[ProvisionalMessage] = []
        for camera, p in list(self.pending.items()):
            seen = max(p.issued, self.last_final.get(camera, -math.inf))
            if now - seen >= self.tracker.camera(camera).s.stale_s:
                out += self._withdraw(camera, "no final scores (stream or inference stopped)")
        return out

    def close_all(self, reason: str) -> list[ProvisionalMessage]:
        return [m for camera in list(self.pending) for m in self._withdraw(camera, reason)]

    def recovered(self, stored: list[dict[str, Any]]) -> list[ProvisionalMessage]:
        """Withdrawals of the provisional events a killed run left pending (``left_pending``),
        so a receiver never waits for a confirmation that cannot come."""
        out = []
        for data in stored:
            fields = {k: data.get(k) for k in Event.__dataclass_fields__ if k in data}
            ev = Event(**{**fields, "top3": [tuple(t) for t in fields.get("top3") or []]})
            ev.reason = "withdrawn: interrupted: alert process restarted"
            self.counters["provisional_withdrawn"] += 1
            out.append(ProvisionalMessage("withdrawn", ev))
        return out

    def _confirm(self, camera: str, p: _Pending, ev: Event, now: float) -> list:
        """The event machine's ``start`` becomes the provisional's event (same id)."""
        del self.pending[camera]
        ev.id = p.event.id  # the start's event is the machine's own: updates/end follow it
        self.confirmed[ev.id] = {
            "issued_at": round(p.issued, 3), "score": p.event.peak_score,
            "snippet_index": p.index, "gained_s": round(max(0.0, now - p.issued), 3),
        }  # fmt: skip
        while len(self.confirmed) > MAX_CONFIRMED:
            self.confirmed.popitem(last=False)
        self.counters["provisional_confirmed"] += 1
        return []

    def _withdraw(self, camera: str, reason: str) -> list[ProvisionalMessage]:
        p = self.pending.pop(camera)
        self.counters["provisional_withdrawn"] += 1
        ev = replace(p.event, reason=f"withdrawn: {reason}", text=f"withdrawn: {p.event.text}")
        return [ProvisionalMessage("withdrawn", ev)]


def event_data(m: ProvisionalMessage) -> dict:
    """The stored and sent ``data`` of a provisional message."""
    return {**m.event.to_dict(), "state": m.kind}


def deliver(pipeline, messages: list[ProvisionalMessage]) -> None:
    """Queue provisional messages like any event message (``AlertPipeline._enqueue``: outbox
    rows for every webhook and MQTT, the recent list, the log line); the provisional one gets
    the snapshot its confirmed ``start`` will later replace (same id, same file)."""
    for m in messages:
        if m.kind == "provisional":
            m.event.snapshot_path = pipeline.clips.snapshot(m.event)
        pipeline._enqueue(m.kind, event_data(m), EventRowState(m.kind))


def feed_final(pipeline, msg: ScoreMessage) -> list[EventMessage]:
    """A final score through the event machine, then the provisional stage (which gives a
    confirming ``start`` the provisional's id before it is queued)."""
    events = pipeline.tracker.feed(msg)
    deliver(pipeline, pipeline.early.after_final(msg, events, time.time()))
    return events


def left_pending(conn) -> list[dict]:
    """Provisional events a killed run stored and never resolved (to withdraw now)."""
    rows = conn.execute("SELECT data FROM events WHERE state='provisional' ORDER BY start_ts")
    return [json.loads(r[0]) for r in rows]
