"""Start-up while the model loads: nothing silently lost, and the operator is told.

A ``sitecustomize`` on the inference process's path makes its model load deliberately slow
(the real ``build_scorer``, then a pause), the way ViT-B/16 is on a loaded CPU. The camera's only
flash comes 3 s after start, long before the model is ready: it must still become an event.
"""

from __future__ import annotations

import time

import pytest
from capture_support import wait_for
from model_loading_support import SLOW_LOAD_S, slow_load_env
from monitor_support import Monitor, short_dir, write_config

from vadmon.dashboard.render import render
from vadmon.dashboard.state import DashboardState
from vadmon.runtime.heartbeat import parse_heartbeat


@pytest.mark.slow
def test_flash_during_a_slow_model_load_is_not_lost(tmp_path, demo_checkpoint, subprocess_env):
    env = slow_load_env(tmp_path, subprocess_env)
    # 8 s of video, one red flash from 3 s to 6 s, then the camera ends (nothing later to catch)
    source = "synthetic:w=320&h=240&fps=10&flash=3&flash_len=30&frames=80"
    cfg = write_config(
        tmp_path / "m.yaml",
        {"cam": source},
        demo_checkpoint,
        ipc=short_dir() / "ipc",
        camera_extra="    loop: false\n",
    )
    mon = Monitor(cfg, env).start()
    try:
        t0 = time.monotonic()
        assert wait_for(lambda: "model loaded in" in mon.output(), 120, 0.2), mon.output()[-3000:]
        out = mon.output()
        assert "loading model: vadclip" in out
        assert "inference not connected yet (model loading): holding up to" in out
        assert wait_for(lambda: "held snippet(s) sent" in mon.output(), 30, 0.2), mon.output()[
            -3000:
        ]
        assert wait_for(lambda: "event start" in mon.output(), 30, 0.2), mon.output()[-3000:]
        took = time.monotonic() - t0
        assert took > SLOW_LOAD_S  # the event came from held snippets, after the slow load
    finally:
        mon.stop()
        mon.kill_all()
    line = next(x for x in mon.output().splitlines() if "held snippet(s) sent" in x)
    assert ", 0 unscored (model loading)" in line  # the hold was large enough for this load


def test_loading_state_reaches_the_dashboard():
    """The heartbeat the loading thread sends is valid and shows as 'loading model'."""
    import json

    body = {
        "process": "inference",
        "ts": time.time(),
        "pid": 4242,
        "state": "loading",
        "info": {"mode": "vadclip", "loading_s": 7.0},
    }
    beat = parse_heartbeat([b"status", json.dumps(body).encode()])
    assert beat is not None and beat.body is not None and not beat.problem
    state = DashboardState(["door"])
    state.update_heartbeat(beat)
    from rich.console import Console

    console = Console(width=120, height=30, record=True, color_system=None)
    console.print(render(state, 120, 30))
    assert "inference loading model (7 s)" in console.export_text()
