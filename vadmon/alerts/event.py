"""Per-camera alert logic: smoothed scores → event lifecycle ``start`` / ``update`` / ``end``.

Pure and deterministic: time comes from the snippets (``t_start``/``t_end``, unix seconds), so a
score sequence always produces the same events; only ``expire(now)`` reads the wall clock.

Definitions (all per camera):

- smoothing: ``ema`` (weight ``smoothing_alpha`` on the newest score), ``median`` of k, ``none``.
- ``labels_ignore``: an event with such a label (below) is suppressed (counted, never sent).
- open: the smoothed score stays ≥ ``threshold`` from the ``t_start`` of the first such snippet
  to the ``t_end`` of the current one for at least ``min_duration_s``. The event starts at that
  first snippet's ``t_start``.
- close: the smoothed score stays < ``threshold - hysteresis`` from the ``t_start`` of the first
  low snippet for at least ``cutoff_s``; the event ends at that ``t_start``.
- label: the top A-Branch class (never ``normal``) by probability *averaged over the event's
  snippets*. A single snippet's argmax flickers between related classes; the mean over the event
  is what a human would call the event, and it converges as the event goes on.
- cooldown: once an event with label L ends, a new event with label L on the same camera that
  would open within ``cooldown_s`` is suppressed (counted, not emitted). Suppressed events do
  not extend the cooldown, so a recurring anomaly is re-alerted once per cooldown period.
- flood bound: at most ``max_events_per_window`` events per camera per ``rate_window_s`` (more:
  ``flooded``, kept but never sent); ``update`` at most every ``update_interval_s``, only on a new
  label or a peak ``peak_delta`` higher. A camera sends a bounded number of messages.
"""

from __future__ import annotations

import hashlib
import math
import random
import string
from collections import deque
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any, Literal

from vadmon.alerts.explain import EvidenceTrack, explain
from vadmon.alerts.lifecycle import EVENT_LIFECYCLE, EventPhase
from vadmon.alerts.smoothing import Smoother
from vadmon.runtime.messages import ScoreMessage

FLOODED = "held back by the flood guard (alerts.flood_max_events): recorded, not sent"
Kind = Literal["start", "update", "end", "flooded"]  # flooded: recorded, never sent
SMOOTHING = ("ema", "median", "none")


@dataclass(frozen=True)
class EventSettings:
    """Alert thresholds for one camera (the lead maps config → this)."""

    threshold: float
    hysteresis: float
    min_duration_s: float
    cutoff_s: float
    smoothing: str
    smoothing_window: int
    smoothing_alpha: float  # EMA weight of the newest score
    labels_ignore: tuple[str, ...]  # labels that never raise events
    cooldown_s: float
    update_interval_s: float
    peak_delta: float
    max_events_per_window: int
    rate_window_s: float
    stale_s: float
    normal_label: str

    def __post_init__(self) -> None:
        if self.smoothing not in SMOOTHING:
            raise ValueError(f"smoothing must be one of {SMOOTHING}, not {self.smoothing!r}")
        if self.smoothing_window < 1:
            raise ValueError("smoothing_window must be ≥ 1")
        if not 0.0 < self.smoothing_alpha <= 1.0:
            raise ValueError("smoothing_alpha must be in (0, 1]")
        if not 0.0 <= self.hysteresis <= self.threshold <= 1.0:
            raise ValueError("need 0 ≤ hysteresis ≤ threshold ≤ 1")


@dataclass
class Event:
    """The state of one event as sent in webhook payloads (``data``)."""

    id: str
    camera: str
    start_ts: float
    end_ts: float | None
    duration_s: float
    peak_score: float
    peak_ts: float
    label: str
    label_prob: float
    top3: list[tuple[str, float]]
    text: str
    snippets: int
    mode: str
    snapshot_path: str | None = None
    clip_path: str | None = None
    reason: str = ""
    explanation: dict[str, Any] = field(default_factory=dict)
    clip_gaps: list[list[float]] = field(default_factory=list)  # [from, to] without frames

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["top3"] = [[name, prob] for name, prob in self.top3]
        return data


@dataclass(frozen=True)
class EventMessage:
    """One lifecycle transition; ``event`` is a snapshot taken at the transition."""

    kind: Kind
    event: Event


def new_event_id(ts: float, camera: str = "", rng: random.Random | None = None) -> str:
    """``"{ts:.6f}-{suffix6}"``: sortable by time.

    The suffix is derived from camera and start time, so the same scores always give the same
    ids: ``vadmon replay`` over a score log reproduces the live run's ids exactly, and a camera
    cannot start two events at the same microsecond. ``rng`` (tests) draws it instead."""
    alphabet = string.ascii_lowercase + string.digits
    if rng is not None:
        suffix = "".join(rng.choice(alphabet) for _ in range(6))
    else:
        digest = hashlib.sha256(f"{camera}|{ts:.6f}".encode()).digest()
        suffix = "".join(alphabet[b % len(alphabet)] for b in digest[:6])
    return f"{ts:.6f}-{suffix}"


def _clock(ts: float) -> str:
    return datetime.fromtimestamp(ts).strftime("%H:%M:%S")


def describe(ev: Event) -> str:
    """Human explanation built only from the scores, e.g. for chat notifications."""
    text = (
        f"{ev.label} ({ev.label_prob:.2f}) on {ev.camera} from {_clock(ev.start_ts)} "
        f"for {ev.duration_s:.1f} s, peak {ev.peak_score:.2f} at {_clock(ev.peak_ts)}"
    )
    if ev.end_ts is None:
        text += " (ongoing)"
    return text


@dataclass
class _Open:
    """Accumulators of the event being tracked (confirmed or still a candidate)."""

    start_ts: float
    last_ts: float
    peak: float = -1.0
    peak_ts: float = 0.0
    n: int = 0
    prob_sums: dict[str, float] = field(default_factory=dict)
    mode: str = "vadclip"
    event: Event | None = None  # the last snapshot sent (set once open)
    phase: EventPhase = EventPhase.CANDIDATE
    below_since: float | None = None
    last_sent_ts: float = -math.inf
    sent_label: str = ""
    sent_peak: float = 0.0
    evidence: EvidenceTrack = field(default_factory=EvidenceTrack)

    def to(self, phase: EventPhase) -> EventPhase:
        """Move along ``EVENT_LIFECYCLE``; returns the phase it left."""
        was, self.phase = self.phase, EVENT_LIFECYCLE.check(self.phase, phase)
        return was

    def add(self, msg: ScoreMessage, normal: str) -> None:
        self.n += 1
        self.evidence.add(msg)
        self.last_ts = msg.t_end
        self.mode = msg.mode
        if msg.score > self.peak:
            self.peak, self.peak_ts = msg.score, (msg.t_start + msg.t_end) / 2
        for name, prob in zip(msg.class_names, msg.class_probs, strict=True):
            if name.lower() != normal:
                self.prob_sums[name] = self.prob_sums.get(name, 0.0) + float(prob)

    def ranking(self) -> list[tuple[str, float]]:
        means = [(name, s / self.n) for name, s in self.prob_sums.items()]
        return sorted(means, key=lambda item: (-item[1], item[0]))

    def label(self) -> tuple[str, float]:
        ranked = self.ranking()
        return ranked[0] if ranked else ("anomaly", self.peak)


class CameraEvents:
    """Event state machine for one camera; feed it that camera's ScoreMessages in order."""

    def __init__(
        self, camera: str, settings: EventSettings, rng: random.Random | None = None
    ) -> None:
        self.camera = camera
        self.s = settings
        self.rng = rng
        self.smooth = Smoother(
            settings.smoothing, settings.smoothing_window, settings.smoothing_alpha
        )
        self.ignored = {label.lower() for label in settings.labels_ignore}
        self.cur: _Open | None = None
        self.cooldown_until: dict[str, float] = {}
        self.recent_starts: deque[float] = deque()
        self.counters: dict[str, int] = {
            "events": 0,
            "updates": 0,
            "suppressed_cooldown": 0,
            "suppressed_rate": 0,
            "suppressed_ignored": 0,
            "out_of_order": 0,
        }
        self.last_score: float | None = None

    @property
    def open_event(self) -> Event | None:
        return self.cur.event if self.cur and self.cur.phase is EventPhase.OPEN else None

    def feed(self, msg: ScoreMessage) -> list[EventMessage]:
        if self.cur is not None and msg.t_end < self.cur.last_ts:
            self.counters["out_of_order"] += 1
            return []
        value = self.smooth(float(msg.score))
        self.last_score = value
        low = self.s.threshold - self.s.hysteresis
        if self.cur is None:
            if value < self.s.threshold:
                return []
            self.cur = _Open(start_ts=msg.t_start, last_ts=msg.t_end)
        cur = self.cur
        if cur.phase is EventPhase.CANDIDATE:
            if value < self.s.threshold:
                return self._drop(cur)  # candidate never lasted min_duration_s
            cur.add(msg, self.s.normal_label)
            if msg.t_end - cur.start_ts >= self.s.min_duration_s:
                return self._confirm(cur)
            return []
        cur.add(msg, self.s.normal_label)
        if value >= low:
            cur.below_since = None
        elif cur.below_since is None:
            cur.below_since = msg.t_start
        if cur.below_since is not None and msg.t_end - cur.below_since >= self.s.cutoff_s:
            return self._close(cur.below_since, "scores fell below threshold - hysteresis")
        return self._maybe_update(cur, msg.t_end)

    def expire(self, now: float) -> list[EventMessage]:
        """Close the current event if its camera has sent no score for ``stale_s``."""
        if self.cur is None or now - self.cur.last_ts < self.s.stale_s:
            return []
        if self.cur.phase is EventPhase.CANDIDATE:
            return self._drop(self.cur)
        return self._close(self.cur.last_ts, "no scores (stream or inference stopped)")

    def close_now(self, reason: str) -> list[EventMessage]:
        """Force-close (shutdown): the event ends at its last scored snippet."""
        if self.cur is None or self.cur.phase is EventPhase.CANDIDATE:
            return self._drop(self.cur) if self.cur else []
        return self._close(self.cur.last_ts, reason)

    def _drop(self, cur: _Open) -> list[EventMessage]:
        """A candidate that never became an event: nothing was sent, nothing is."""
        cur.to(EventPhase.CLOSED)
        self.cur = None
        return []

    def _confirm(self, cur: _Open) -> list[EventMessage]:
        start = cur.start_ts
        held = self._held_back(cur.label()[0], start)
        if held:
            self.counters[held] += 1
            cur.to(EventPhase.SUPPRESSED)
            if held == "suppressed_rate":  # recorded with its snapshot (``vadmon events``)
                flood = self._snapshot(
                    cur, new_event_id(start, self.camera, self.rng), None, FLOODED
                )
                return [EventMessage("flooded", flood)]
            return []
        self.recent_starts.append(start)
        self.counters["events"] += 1
        cur.evidence.mark_confirmed(cur.ranking())
        cur.event = self._snapshot(cur, new_event_id(start, self.camera, self.rng), None, "")
        cur.to(EventPhase.OPEN)
        return [self._emit("start", cur, cur.last_ts)]

    def _held_back(self, label: str, start: float) -> str:
        """The counter of why a confirmed event is not raised ("": it is)."""
        if label.lower() in self.ignored:
            return "suppressed_ignored"
        if start < self.cooldown_until.get(label, -math.inf):
            return "suppressed_cooldown"
        while self.recent_starts and self.recent_starts[0] <= start - self.s.rate_window_s:
            self.recent_starts.popleft()
        return "suppressed_rate" if len(self.recent_starts) >= self.s.max_events_per_window else ""

    def _maybe_update(self, cur: _Open, now: float) -> list[EventMessage]:
        if cur.phase is not EventPhase.OPEN or cur.event is None:
            return []
        if now - cur.last_sent_ts < self.s.update_interval_s:
            return []
        label, _ = cur.label()
        if label == cur.sent_label and cur.peak < cur.sent_peak + self.s.peak_delta:
            return []
        self.counters["updates"] += 1
        cur.event = self._snapshot(cur, cur.event.id, None, "")
        return [self._emit("update", cur, now)]

    def _close(self, end_ts: float, reason: str) -> list[EventMessage]:
        cur = self.cur
        assert cur is not None
        self.cur = None
        if cur.to(EventPhase.CLOSED) is not EventPhase.OPEN or cur.event is None:
            return []  # suppressed events do not extend the cooldown
        for label in {cur.label()[0], cur.sent_label}:  # final and last announced label
            self.cooldown_until[label] = max(
                self.cooldown_until.get(label, -math.inf), end_ts + self.s.cooldown_s
            )
        cur.event = self._snapshot(cur, cur.event.id, end_ts, reason)
        return [EventMessage("end", cur.event)]

    def _emit(self, kind: Kind, cur: _Open, now: float) -> EventMessage:
        assert cur.event is not None
        cur.last_sent_ts = now
        cur.sent_label = cur.event.label
        cur.sent_peak = cur.peak
        return EventMessage(kind, cur.event)

    def _snapshot(self, cur: _Open, event_id: str, end_ts: float | None, reason: str) -> Event:
        label, prob = cur.label()
        until = end_ts if end_ts is not None else cur.last_ts
        previous = cur.event
        ev = Event(
            id=event_id,
            camera=self.camera,
            start_ts=cur.start_ts,
            end_ts=end_ts,
            duration_s=round(max(0.0, until - cur.start_ts), 3),
            peak_score=round(cur.peak, 4),
            peak_ts=cur.peak_ts,
            label=label,
            label_prob=round(prob, 4),
            top3=[(name, round(p, 4)) for name, p in cur.ranking()[:3]],
            text="",
            snippets=cur.n,
            mode=cur.mode,
            snapshot_path=previous.snapshot_path if previous else None,
            clip_path=previous.clip_path if previous else None,
            reason=reason,
        )
        ev.text = describe(ev)
        ev.explanation = explain(
            top=ev.top3,
            start_ts=ev.start_ts,
            peak_ts=ev.peak_ts,
            duration_s=ev.duration_s,
            threshold=self.s.threshold,
            track=cur.evidence,
        )
        return ev


class EventTracker:
    """All cameras: routes ScoreMessages to per-camera state machines."""

    def __init__(
        self,
        default: EventSettings,
        per_camera: dict[str, EventSettings] | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.default = default
        self.per_camera = dict(per_camera or {})
        self.rng = rng
        self.cameras: dict[str, CameraEvents] = {}

    def camera(self, name: str) -> CameraEvents:
        if name not in self.cameras:
            settings = self.per_camera.get(name, self.default)
            self.cameras[name] = CameraEvents(name, settings, self.rng)
        return self.cameras[name]

    def feed(self, msg: ScoreMessage) -> list[EventMessage]:
        return self.camera(msg.camera).feed(msg)

    def expire(self, now: float) -> list[EventMessage]:
        return [m for cam in self.cameras.values() for m in cam.expire(now)]

    def close_all(self, reason: str) -> list[EventMessage]:
        return [m for cam in self.cameras.values() for m in cam.close_now(reason)]

    def counters(self) -> dict[str, int]:
        total: dict[str, int] = {}
        for cam in self.cameras.values():
            for key, value in cam.counters.items():
                total[key] = total.get(key, 0) + value
        return total
