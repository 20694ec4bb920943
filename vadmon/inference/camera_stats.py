"""Per-camera counters of the inference loop: what was scored, dropped (and why), the latest
score and the recent ones the heartbeat carries."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from vadmon.runtime.status_schema import MAX_RECENT_SCORES, InferenceCamera, RateMeter

# stale: older than max_age_s; backlog: beyond per_camera_max newest; capacity: the batch was
# full (round-robin); frames: ring slot overwritten or unreadable; encoder: Triton down/late
DROP_REASONS = ("stale", "backlog", "capacity", "frames", "encoder")


@dataclass
class CameraStats:
    snippets: int = 0
    drops: dict[str, int] = field(default_factory=lambda: dict.fromkeys(DROP_REASONS, 0))
    ring_errors: int = 0
    score: float = 0.0
    label: str = ""
    label_prob: float = 0.0
    latency_ms: float = 0.0
    last_ts: float = 0.0
    last_index: int = -1
    rate: RateMeter = field(default_factory=lambda: RateMeter(window_s=10.0))
    # every score, newest last: the heartbeat carries them all, not one sample per beat
    recent: deque[float] = field(default_factory=lambda: deque(maxlen=MAX_RECENT_SCORES))
    last_arrival: float = 0.0  # monotonic time the latest snippet reached the scorer
    previews_relayed: int = 0
    previews_refused: int = 0

    @property
    def skipped(self) -> int:
        return sum(self.drops.values())

    def body(
        self, keep: int, gaps: dict[str, int], refused: dict[str, int], gate: dict[str, float]
    ) -> InferenceCamera:
        """This camera's part of the ``inference`` heartbeat: its newest ``keep`` scores, the
        scorer's gap counters (``gap_filled``, ``gap_restarts``), its link refusals and the
        change gate's counters (``gate_reused``, …; empty when the gate is off)."""
        return InferenceCamera(
            score=self.score,
            label=self.label,
            label_prob=self.label_prob,
            fps=self.rate.rate(),
            skipped_total=self.skipped,
            drops=dict(self.drops),
            **{f"gap_{k}": v for k, v in gaps.items()},
            snippets_total=self.snippets,
            latency_ms=self.latency_ms,
            last_ts=self.last_ts,
            recent_scores=list(self.recent)[-keep:],
            previews_relayed=self.previews_relayed,
            previews_refused=self.previews_refused,
            refused=refused,
            **gate,
        )
