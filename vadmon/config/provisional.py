"""``alerts.provisional``: an early, provisional alert from the lookahead-0 score.

With ``model.lookahead`` d > 0 the monitor's final score of snippet t waits for d more snippets
(d × 16 / fps seconds). The newest row of the window inference runs anyway is a causal
(lookahead-0) score of the newest snippet, free of encoder cost; with this switch on, a camera's
alert process opens a ``provisional`` event when that score crosses ``threshold`` and confirms it
(the normal ``start``, same event id) or withdraws it when the final scores arrive
(docs/MONITOR.md, "Provisional alerts"). Off by default: receivers must expect withdrawals.
"""

from __future__ import annotations

from pydantic import Field

from vadmon.config.base import StrictModel


class ProvisionalConfig(StrictModel):
    """Early stage of the alert rules (needs ``model.lookahead`` > 0 to have any effect)."""

    enabled: bool = Field(
        False,
        description="Send a provisional event from the lookahead-0 score, confirmed (start, "
        "same id) or withdrawn once the final lookahead-d scores arrive.",
    )
    threshold: float | None = Field(
        None, ge=0, le=1,
        description="Raw lookahead-0 score that opens a provisional event; null: the camera's "
        "alerts.threshold.",
    )  # fmt: skip
