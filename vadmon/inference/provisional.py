"""Provisional (lookahead-0) scores, read from the forward pass that gives the final scores.

With ``model.lookahead`` d > 0, snippet t is scored from the window ending at t + d
(``VadClipStreamScorer``). That window's newest row is, by the same definition, the
lookahead-0 score of snippet t + d: the window a lookahead-0 scorer would run for it is exactly
this one (same start on the attention-block grid, same filled gaps). So the newest row is read
from the batch that is run anyway: no extra encoder work, and one adapter pass only for the
first d snippets of a segment, when no final score is due yet. The final scores are untouched
(``tests/test_provisional.py`` checks both against plain scorers).

Only cameras with ``alerts.provisional.enabled`` get provisional scores (``early_cameras``);
inference publishes them as ``ProvisionalScore`` on their own topic, which only the alert
process subscribes to (``vadmon.alerts.provisional``).
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, replace
from typing import Any

from vadmon.inference.scores import (
    Scored,
    SnippetScore,
    VadClipStreamScorer,
    _Job,
    score_message,
)
from vadmon.runtime.messages import ProvisionalScore, SnippetMessage
from vadmon.runtime.transport import send_message

_UNSCORED = SnippetScore(0.0, 0.0, [])


@dataclass(frozen=True)
class _Early:
    """Marks the extra row read for a provisional score (its snippet's own tag inside)."""

    tag: Any


class EarlyStreamScorer(VadClipStreamScorer):
    """``VadClipStreamScorer`` that also yields the newest snippet's lookahead-0 score of the
    cameras in ``early_cameras`` (``take_early``); its ``feed`` returns the same final scores."""

    early_cameras: frozenset[str] = frozenset()

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._early: list[Scored] = []

    def _due(self, cam, name: str, flush: bool, leaving: int = -1):
        """The base job, plus the newest row when it still waits for its lookahead (never in
        a flush or the pre-push check: those windows end at an older snippet)."""
        job = super()._due(cam, name, flush, leaving)
        newest = cam.window.newest
        if flush or leaving != -1 or name not in self.early_cameras or newest is None:
            return job
        if not cam.pending or cam.pending[-1][0] != newest:
            return job  # lookahead 0: the final score is itself causal
        row = cam.window.row_of(newest)
        early = (row, Scored(name, newest, _Early(cam.pending[-1][1]), _UNSCORED, 0))
        if job is None:
            return _Job(cam.window.tensor(), [early])
        job.rows.append(early)
        return job

    def feed(self, entries) -> list[Scored]:
        out = super().feed(entries)
        final = []
        for s in out:
            if isinstance(s.tag, _Early):
                self._early.append(replace(s, tag=s.tag.tag))
            else:
                final.append(s)
        return final

    def take_early(self) -> list[Scored]:
        """The provisional scores of the last ``feed`` calls (then forgotten: bounded)."""
        out, self._early = self._early, []
        return out


def attach(scorer: object, cameras: frozenset[str]) -> None:
    """Turn provisional scores on for ``cameras`` (a scorer without them: nothing to do)."""
    if isinstance(scorer, EarlyStreamScorer):
        scorer.early_cameras = frozenset(cameras)


def take_early(scorer: object) -> list[Scored]:
    return scorer.take_early() if isinstance(scorer, EarlyStreamScorer) else []


def provisional_message(
    m: SnippetMessage, res: SnippetScore, scorer, timings: dict[str, float], now: float
) -> ProvisionalScore:
    """What inference publishes for one provisional score: the final message's fields."""
    final = score_message(m, res, scorer, dict(timings, lookahead=0.0), now)
    return ProvisionalScore(**asdict(final))


def publish_early(pub, scorer, timings: dict[str, float]) -> int:
    """Send every provisional score the last ``feed`` produced; returns how many."""
    sent = 0
    for res in take_early(scorer):
        m, _ = res.tag
        now = time.time()
        latency = dict(timings, latency=now - m.t_end)
        send_message(pub, provisional_message(m, res.score, scorer, latency, now))
        sent += 1
    return sent
