"""Re-run the live alert logic over stored scores: tune settings without re-running the model.

The live alert process feeds ``EventTracker`` the ScoreMessages in the order inference sent them
and calls ``expire(now)`` on a wall-clock tick. Replay uses the messages' own emission times as
that clock: an event whose camera went quiet for ``stale_s`` is expired before the next message
is fed, with the same end time (its last scored snippet) the live run gave it. Event ids derive
from camera and start time, so a replay with the live settings reproduces the live events, ids
included.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace

from vadmon.alerts.event import EventMessage, EventSettings, EventTracker
from vadmon.runtime.messages import ScoreMessage

END_REASON = "end of score log"


@dataclass(frozen=True)
class ReplayResult:
    messages: list[EventMessage]
    counters: dict[str, int]

    def starts(self) -> list[EventMessage]:
        return [m for m in self.messages if m.kind == "start"]

    def ends(self) -> list[EventMessage]:
        return [m for m in self.messages if m.kind == "end"]


def replay(
    scores: Iterable[ScoreMessage],
    default: EventSettings,
    per_camera: Mapping[str, EventSettings] | None = None,
    close_at_end: bool = True,
) -> ReplayResult:
    tracker = EventTracker(default, dict(per_camera or {}))
    out: list[EventMessage] = []
    for msg in scores:
        out += tracker.expire(msg.t_emitted or msg.t_end)
        out += tracker.feed(msg)
    if close_at_end:
        out += tracker.close_all(END_REASON)
    return ReplayResult(out, tracker.counters())


def with_threshold(settings: EventSettings, threshold: float) -> EventSettings:
    """``settings`` at another threshold; hysteresis shrinks if it would exceed it."""
    return replace(settings, threshold=threshold, hysteresis=min(settings.hysteresis, threshold))
