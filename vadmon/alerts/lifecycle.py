"""The alert event's two lifecycles, as tables (``runtime/lifecycle.py``).

``EventPhase``: what the per-camera tracker (``alerts/event.py``) holds between scores::

    candidate ──min_duration_s──▶ open ──cutoff / stale / shutdown──▶ closed
        │  └──ignored label / cooldown / rate bound──▶ suppressed ──▶ closed
        └──score fell back before min_duration_s──────────────────────▶ closed

Only ``open`` sends anything (start, updates, end). A new stage (e.g. a provisional alert
before ``open``) is one more member and one more row.

``EventRowState``: the ``events.state`` column of the outbox (``alerts/outbox.py``)::

    open ──event ended, clip pending──▶ ending ──clip written──▶ closed
      └──────────────────────────────────────────────────────▶ closed (no clip)
    open / ending ──process restarted mid-event──▶ interrupted
    suppressed: over the flood guard, recorded (with its snapshot) for ``vadmon events``, never
    sent; born in that state and final
    provisional ──final scores confirm (same id)──▶ open
        └──final scores deny, stale, shutdown, restart──▶ withdrawn (final)
    (``alerts.provisional``: from the lookahead-0 score, ``alerts/provisional.py``)

Rewriting a row in its own state (an update, an explanation) is no move.
"""

from __future__ import annotations

from enum import StrEnum

from vadmon.runtime.lifecycle import Transitions


class EventPhase(StrEnum):
    CANDIDATE = "candidate"  # above threshold, not yet for min_duration_s
    OPEN = "open"  # confirmed: start sent, updates and end follow
    SUPPRESSED = "suppressed"  # confirmed but held back (ignored label, cooldown, rate)
    CLOSED = "closed"  # over (or a candidate that never lasted): the tracker forgets it


EVENT_LIFECYCLE = Transitions.of(
    "event",
    {
        EventPhase.CANDIDATE: {EventPhase.OPEN, EventPhase.SUPPRESSED, EventPhase.CLOSED},
        EventPhase.OPEN: {EventPhase.CLOSED},
        EventPhase.SUPPRESSED: {EventPhase.CLOSED},
        EventPhase.CLOSED: set(),
    },
)


class EventRowState(StrEnum):
    OPEN = "open"
    ENDING = "ending"  # ended, its clip is still being written
    CLOSED = "closed"
    INTERRUPTED = "interrupted"  # the process restarted while it was open
    SUPPRESSED = "suppressed"  # flooded: kept, not sent
    PROVISIONAL = "provisional"  # sent from the lookahead-0 score, awaiting the final ones
    WITHDRAWN = "withdrawn"  # a provisional the final scores did not confirm


EVENT_ROW_LIFECYCLE = Transitions.of(
    "outbox event",
    {
        EventRowState.OPEN: {EventRowState.ENDING, EventRowState.CLOSED, EventRowState.INTERRUPTED},
        EventRowState.ENDING: {EventRowState.CLOSED, EventRowState.INTERRUPTED},
        EventRowState.CLOSED: set(),
        EventRowState.INTERRUPTED: set(),
        EventRowState.SUPPRESSED: set(),
        EventRowState.PROVISIONAL: {EventRowState.OPEN, EventRowState.WITHDRAWN},
        EventRowState.WITHDRAWN: set(),
    },
)
# retention may delete these (never an open one)
FINISHED_ROW_STATES = (
    EventRowState.CLOSED,
    EventRowState.INTERRUPTED,
    EventRowState.SUPPRESSED,
    EventRowState.WITHDRAWN,
)
