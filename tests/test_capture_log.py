"""Issue 21 (logs): an unreachable camera logs once on the change, then collapsed "still …"
lines at attempts 2, 4, 8, … — a real capture process against a port nobody listens on."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator

import pytest

from tests.capture_support import Capture, capture_runs, free_port, wait_for

FAST = {"backoff_initial_s": 0.05, "backoff_max_s": 0.2, "open_timeout_s": 2, "read_timeout_s": 2}


@pytest.fixture()
def capture(subprocess_env: dict[str, str]) -> Iterator[Callable[..., Capture]]:
    yield from capture_runs(subprocess_env)


def test_refused_camera_lines_collapse(capture: Callable[..., Capture]) -> None:
    run = capture("nobody", f"rtsp://127.0.0.1:{free_port()}/test", FAST)
    assert wait_for(
        lambda: run.statuses and (run.last().counters.reconnects_total or 0) >= 9, 40
    ), run.output()
    assert run.stop() == 0
    lines = [ln for ln in run.output().splitlines() if "nobody" in ln]
    still = [
        int(ln.split("still refused, ")[1].split()[0]) for ln in lines if "still refused" in ln
    ]
    assert still[:3] == [2, 4, 8], lines
    assert still == [2**k for k in range(1, len(still) + 1)], lines  # only powers of two
    assert any(re.search(r"still refused, 8 attempts, next in [0-9.]+ s$", ln) for ln in lines), (
        lines
    )
    # before: connect + error + retry + 2 state lines per attempt (≈ 5 per attempt, 45+ here)
    assert len(lines) <= 8 + len(still), lines
