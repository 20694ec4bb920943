"""Helpers shared by tests (moved from test_calibrate.py; test modules import only *_support modules)."""

from __future__ import annotations

import numpy as np
from explain_support import score

DT = 1.6  # seconds per snippet at 10 fps


def normal_stream(seed: int, hours: float, t0: float = 1_700_000_000.0) -> list:
    """Normal footage as a model sees it: a slowly wandering low score with bursts of noise."""
    rng = np.random.default_rng(seed)
    n = int(hours * 3600 / DT)
    x = np.empty(n)
    x[0] = -3.0
    shocks = rng.normal(0, 0.45, n) + (rng.random(n) < 0.004) * rng.normal(2.0, 1.0, n)
    for i in range(1, n):
        x[i] = -3.0 + 0.93 * (x[i - 1] + 3.0) + shocks[i]
    values = 1 / (1 + np.exp(-x))
    return [
        score(i, t0, float(v), [1 - v, v / 3, v / 3, v / 3], dt=DT) for i, v in enumerate(values)
    ]
