"""The provisional alert stage replayed: time it gains and how often it is withdrawn.

``vadmon eval --causal`` feeds each test video through the monitor's scorer
(``EarlyStreamScorer``, the class inference builds) and records, per snippet step, the final
scores that came due and the provisional (lookahead-0) score of the newest snippet, in the order
the alert process receives them. Those messages then go through the monitor's own
``CameraEvents`` and ``ProvisionalStage`` on the monitor's clock (``causal_detect``: what step
i publishes exists at (i + 1)·16/fps s). Per provisional alert: confirmed, with the time gained
= its confirming ``start``'s time − its own time, or withdrawn.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from vadmon.alerts.event import EventSettings, EventTracker
from vadmon.alerts.provisional import ProvisionalSettings, ProvisionalStage
from vadmon.inference.scores import Scored
from vadmon.runtime.messages import ProvisionalScore, ScoreMessage

CAMERA = "eval"


@dataclass(frozen=True)
class Step:
    """What the scorer published after snippet ``index`` arrived (and at a video's end)."""

    index: int
    finals: list[Scored]
    early: list[Scored]


@dataclass
class Outcome:
    """Every provisional alert of a set of videos: gained seconds (confirmed) or withdrawn."""

    gains: list[float] = field(default_factory=list)
    withdrawn: int = 0

    def summary(self) -> dict[str, Any]:
        n = len(self.gains) + self.withdrawn
        g = np.array(self.gains, dtype=np.float64)
        return {
            "provisional_alerts": n,
            "confirmed": len(self.gains),
            "withdrawn": round(self.withdrawn / n, 4) if n else None,
            "gain_median_s": round(float(np.median(g)), 3) if len(g) else None,
            "gain_p95_s": round(float(np.percentile(g, 95)), 3) if len(g) else None,
        }


def _message(cls, s: Scored, names: list[str], snippet_s: float) -> ScoreMessage:
    return cls(
        camera=CAMERA, snippet_index=s.index, t_start=s.index * snippet_s,
        t_end=(s.index + 1) * snippet_s, score=s.score, fine=s.fine,
        class_names=list(names), class_probs=list(s.class_probs),
    )  # fmt: skip


def run_stage(
    steps: list[Step],
    names: list[str],
    rules: EventSettings,
    threshold: float,
    snippet_s: float,
    outcome: Outcome,
) -> None:
    """One video's published scores through the event machine and the provisional stage, in
    the alert process's order: a step's final scores, then its provisional score."""
    tracker = EventTracker(rules)
    stage = ProvisionalStage({CAMERA: ProvisionalSettings(threshold)}, tracker)
    issued: dict[str, float] = {}
    for step in steps:
        now = (step.index + 1) * snippet_s
        for s in step.finals:
            msg = _message(ScoreMessage, s, names, snippet_s)
            events = tracker.feed(msg)
            _count(stage.after_final(msg, events, now), issued, outcome)
            for m in events:
                if m.kind == "start" and m.event.id in issued:
                    outcome.gains.append(now - issued.pop(m.event.id))
        for s in step.early:
            opened = stage.on_provisional(_message(ProvisionalScore, s, names, snippet_s), now)
            issued.update((m.event.id, now) for m in opened)
    tracker.close_all("end of video")
    _count(stage.close_all("end of video"), issued, outcome)


def _count(messages, issued: dict[str, float], outcome: Outcome) -> None:
    for m in messages:
        if m.kind == "withdrawn":
            issued.pop(m.event.id, None)
            outcome.withdrawn += 1
