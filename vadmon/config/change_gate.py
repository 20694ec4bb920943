"""``change_gate:``: reuse a camera's previous CLIP embedding when its sampled frame did not change.

As Frigate gates its object detector on motion, the inference process compares each sampled
frame (a 64-pixel-wide grey thumbnail) with the last frame it *encoded* for that camera and
skips the image tower when fewer than ``max_changed_fraction`` of the thumbnail's pixels moved
by more than the camera's noise threshold. The threshold is measured per camera at start
(``warmup_pairs`` consecutive sampled-frame differences, the quietest one's median) times
``noise_factor``, never below ``min_pixel_delta``. Off by default; docs/PERFORMANCE.md
("Change gating") has the measurement on real footage.
"""

from __future__ import annotations

from pydantic import Field

from vadmon.config.base import StrictModel


class ChangeGateConfig(StrictModel):
    enabled: bool = Field(
        False,
        description="Reuse the previous embedding of a camera whose sampled frame differs from "
        "the last encoded one by less than its measured noise floor (counted per camera as "
        "gate_reused). Off: every snippet is encoded.",
    )
    warmup_pairs: int = Field(
        8, ge=1, le=1000,
        description="Consecutive sampled-frame differences each camera measures its noise "
        "floor from (the quietest pair's median pixel difference); nothing is gated before.",
    )  # fmt: skip
    noise_factor: float = Field(
        6.0, ge=1.0, le=100.0,
        description="A thumbnail pixel counts as changed when it differs by more than this "
        "times the camera's noise floor.",
    )  # fmt: skip
    min_pixel_delta: float = Field(
        3.0, gt=0.0, le=255.0,
        description="Lowest per-pixel threshold in grey levels (a noiseless camera's floor is "
        "0): smaller differences never count as change.",
    )  # fmt: skip
    max_changed_fraction: float = Field(
        0.001, ge=0.0, lt=1.0,
        description="A frame is unchanged when at most this fraction of its thumbnail's pixels "
        "changed (0.001 of 64x48: 3 pixels; a walking person at 768x576 is about 25).",
    )  # fmt: skip
    max_reuse: int = Field(
        25, ge=1, le=10000,
        description="Consecutive snippets of one camera that may reuse an embedding before one "
        "is encoded anyway (bounds how long a missed slow change can last: 25 × 1.6 s = 40 s).",
    )  # fmt: skip
