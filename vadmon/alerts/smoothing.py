"""Score smoothing before the event thresholds (``smoothing``: ema, median or none).

Apart from ``alerts/event.py`` so the event lifecycle reads on its own; ``Smoother`` is still
importable from there.
"""

from __future__ import annotations

import statistics
from collections import deque


class Smoother:
    """EMA (weight ``alpha`` on the newest score) / running median of k / identity."""

    def __init__(self, kind: str, k: int, alpha: float) -> None:
        self.kind = kind
        self.alpha = alpha
        self.window: deque[float] = deque(maxlen=k)
        self.value: float | None = None

    def __call__(self, x: float) -> float:
        if self.kind == "ema":
            self.value = x if self.value is None else self.alpha * x + (1 - self.alpha) * self.value
        elif self.kind == "median":
            self.window.append(x)
            self.value = float(statistics.median(self.window))
        else:
            self.value = x
        return self.value
