"""The one retry-delay formula: exponential, capped, jittered.

Used for child restarts (``runtime/child.py``), webhook retries (``alerts/delivery.py``) and
camera reconnects (``capture/watchdog.py``). Jitter decides how a crowd spreads:

- ``equal``: between half and all of the capped delay — restarts and retries spread out but
  never collapse to (almost) no delay;
- ``full``: anywhere in [0, capped delay] — many cameras behind one failed switch reconnect
  spread over the whole interval instead of in waves (the thundering herd).
"""

from __future__ import annotations

import random
from typing import Literal

Jitter = Literal["equal", "full"]
MAX_DOUBLINGS = 62  # beyond this base·2^n only overflows; the cap applies long before


def backoff_delay(
    attempt: int, base_s: float, max_s: float, rng: random.Random, jitter: Jitter = "equal"
) -> float:
    """Delay before retry number ``attempt`` (1 = the first retry): the capped delay
    ``min(max_s, base_s·2^(attempt-1))``, jittered as ``jitter`` says."""
    cap = min(max_s, base_s * 2 ** min(max(0, attempt - 1), MAX_DOUBLINGS))
    if jitter == "full":
        return rng.uniform(0.0, cap)
    return cap / 2 + rng.uniform(0.0, cap / 2)
