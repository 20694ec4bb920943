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
from collections.abc import Mapping
from dataclasses import asdict, replace
from typing import Any

from vadmon.inference.scores import Scored, VadClipStreamScorer, _Camera, _Job, score_message
from vadmon.runtime.messages import ProvisionalScore, SnippetMessage
from vadmon.runtime.transport import send_message

EARLY = -1  # a job row's lookahead field marking the extra newest row (never a real lookahead)


class EarlyStreamScorer(VadClipStreamScorer):
    """``VadClipStreamScorer`` that also yields the newest snippet's lookahead-0 score of the
    cameras in ``early_cameras`` (``take_early``); its ``feed`` returns the same final scores."""

    early_cameras: frozenset[str] = frozenset()

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._early: list[Scored] = []

    def _due(self, cam: _Camera, name: str, flush: bool, leaving: int = -1) -> _Job | None:
        """The base job, plus the newest row when it still waits for its lookahead (never in
        a flush or the pre-push check: those windows end at an older snippet)."""
        job = super()._due(cam, name, flush, leaving)
        newest = cam.window.newest
        if flush or leaving != -1 or name not in self.early_cameras or newest is None:
            return job
        if not cam.pending or cam.pending[-1] != newest:
            return job  # lookahead 0: the final score is itself causal
        early = (cam.window.row_of(newest), newest, EARLY)
        if job is None:
            return _Job(cam.window.tensor(), name, [early])
        job.rows.append(early)
        return job

    def feed(self, entries) -> list[Scored]:
        final = []
        for s in super().feed(entries):
            if s.lookahead == EARLY:
                self._early.append(replace(s, lookahead=0))
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
    m: SnippetMessage, res: Scored, timings: dict[str, float], now: float
) -> ProvisionalScore:
    """What inference publishes for one provisional score: the final message's fields."""
    return ProvisionalScore(**asdict(score_message(m, res, timings, now)))


def publish_early(
    pub, scorer: object, timings: dict[str, float], waiting: Mapping[str, Mapping[int, Any]]
) -> int:
    """Send every provisional score the last ``feed`` produced; returns how many. ``waiting``:
    the loop's fed snippets by camera and index (the newest is still there: its final score
    is not due yet)."""
    sent = 0
    for res in take_early(scorer):
        got = waiting.get(res.camera, {}).get(res.index)
        if got is None:
            continue
        m = got[0]
        now = time.time()
        send_message(pub, provisional_message(m, res, dict(timings, latency=now - m.t_end), now))
        sent += 1
    return sent
