"""Hostile heartbeats: validated once (``parse_heartbeat`` + the status schema), bounded state,
and liveness only from the supervised child's own pid — with real processes and sockets."""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from pathlib import Path

import pytest
import zmq
from monitor_support import alive, write_config
from supervisor_support import drive

from vadmon.capture.watchdog import CameraState, Watchdog, WatchdogSettings
from vadmon.config import SupervisorConfig, load_config
from vadmon.dashboard.console import MonitorConsole
from vadmon.dashboard.state import DashboardState
from vadmon.runtime.heartbeat import MAX_BYTES, TOPIC, encode, parse_heartbeat
from vadmon.runtime.status_schema import (
    CaptureCounters,
    CaptureInfo,
    CaptureStatus,
    InferenceStatus,
)
from vadmon.runtime.supervisor import ChildSpec, Supervisor

CHILD = Path(__file__).with_name("sup_child.py")
pytestmark = pytest.mark.timeout(90)


def raw(body: dict) -> list[bytes]:
    return [TOPIC, json.dumps(body).encode()]


def config(tmp_path: Path, cameras: tuple[str, ...] = ("door",)):
    checkpoint = tmp_path / "unused.pt"
    checkpoint.write_bytes(b"")
    path = write_config(
        tmp_path / "m.yaml", {c: "synthetic:w=64&h=48&fps=5" for c in cameras}, checkpoint
    )
    return load_config(path)


def spec(name: str, mode: str, tmp_path: Path, env: dict[str, str]) -> ChildSpec:
    argv = [sys.executable, str(CHILD), mode, str(tmp_path)]
    return ChildSpec(name, argv, env=env, heartbeat=True)


# --- the parser: envelope and body -------------------------------------------------------------


@pytest.mark.parametrize(
    "frames",
    [
        [b"a", b"b", b"c"],
        [TOPIC, b"{not json"],
        [TOPIC, b"[" * 100_000 + b"]" * 100_000],  # nesting deeper than json can recurse
        [TOPIC, b" " * (MAX_BYTES + 1)],
        raw({"process": "capture:door", "ts": 1.0}),  # no pid
        raw({"process": "capture:door", "ts": 1.0, "pid": True}),
        raw({"process": "capture:door", "ts": 1.0, "pid": -4}),
        raw({"process": "capture:door", "ts": "now", "pid": 4}),
        raw({"process": "x" * 500, "ts": 1.0, "pid": 4}),
        raw({"process": 7, "ts": 1.0, "pid": 4}),
        raw(["capture:door", 1.0, 4]),
    ],
)
def test_unusable_envelopes_are_dropped(frames: list[bytes]) -> None:
    assert parse_heartbeat(frames) is None


def test_wrong_typed_body_keeps_liveness_but_no_numbers() -> None:
    envelope = {"process": "capture:door", "ts": 5.0, "pid": 4}
    bad = parse_heartbeat(raw({**envelope, "counters": {"fps": "x"}}))
    assert bad is not None and bad.body is None and bad.pid == 4
    assert "counters.fps" in bad.problem
    for body in (
        {"state": "on fire"},
        {"counters": {"fps": float("inf")}},  # json.dumps writes Infinity; never a number here
        {"counters": {"frames_total": -1}},
        {"info": {"source": "s" * 10_000}},
        {"camera": ["door"]},
    ):
        hb = parse_heartbeat(raw({**envelope, **body}))
        assert hb is not None and hb.body is None and hb.problem, body
    scores = {"cameras": {"door": {"score": 1.5}}}
    assert parse_heartbeat(raw({"process": "inference", "ts": 1, "pid": 4, "info": scores})).problem
    hist = {"le": [0.1, 0.05], "counts": [1, 2, 3], "sum": 1.0}  # bounds out of order
    bad_hist = {"process": "alerts", "ts": 1, "pid": 4, "info": {"alert_latency": hist}}
    assert parse_heartbeat(raw(bad_hist)).problem
    good = parse_heartbeat(raw({**envelope, "counters": {"fps": 9.5}, "future_field": [1]}))
    assert isinstance(good.body, CaptureStatus) and good.body.counters.fps == 9.5
    other = parse_heartbeat(raw({"process": "worker", "ts": 1, "pid": 4, "counters": "x"}))
    assert other is not None and other.body is None and not other.problem  # no schema to break
    many = {f"cam{i}": {"score": 0.5} for i in range(300)}
    flood = parse_heartbeat(
        raw({"process": "inference", "ts": 1, "pid": 4, "info": {"cameras": many}})
    )
    assert flood.body is None and "cameras" in flood.problem
    fine = parse_heartbeat(raw({"process": "inference", "ts": 1, "pid": 4, "info": {}}))
    assert isinstance(fine.body, InferenceStatus)


# --- real supervisor, real child, real socket ---------------------------------------------------


def test_wrong_typed_field_from_a_real_child_does_not_stop_the_monitor(
    tmp_path: Path, subprocess_env: dict[str, str]
) -> None:
    """The issue's case: ``{"counters":{"fps":"x"}}`` raised in status_lines and stopped it."""
    cfg = config(tmp_path)
    endpoint = f"ipc://{tmp_path}/hb.ipc"
    sup = Supervisor(
        [spec("capture:door", "hostile", tmp_path, subprocess_env)],
        SupervisorConfig(heartbeat_timeout_s=2.0, heartbeat_startup_s=20),
        heartbeat_endpoint=endpoint,
    )
    console = MonitorConsole(cfg, sup, dashboard=False)
    sup.start()
    try:
        drive(sup, lambda: sup.bad_bodies >= 5, 20, "hostile heartbeats")
        first_pid = sup.status()["capture:door"].pid
        deadline = time.monotonic() + 3.0  # longer than heartbeat_timeout_s
        while time.monotonic() < deadline:
            sup.poll(0.05)
            console.tick()
        lines = console.status_lines()
    finally:
        sup.shutdown()
    status = sup.status()["capture:door"]
    assert status.heartbeat_kills == 0 and status.starts == 1 and first_pid  # alive all along
    assert lines[0].startswith("camera door: connecting"), lines  # no numbers were trusted
    assert "capture — fps" in lines[0], lines


def test_fake_names_do_not_grow_state(tmp_path: Path, subprocess_env: dict[str, str]) -> None:
    """5,000 made-up process names: counted as strays, never stored."""
    cfg = config(tmp_path)
    endpoint = f"ipc://{tmp_path}/hb.ipc"
    sup = Supervisor(
        [spec("capture:door", "beat", tmp_path, subprocess_env)],
        SupervisorConfig(heartbeat_startup_s=30),
        heartbeat_endpoint=endpoint,
    )
    console = MonitorConsole(cfg, sup, dashboard=False)
    sup.start()
    ctx = zmq.Context.instance()
    push = ctx.socket(zmq.PUSH)
    push.setsockopt(zmq.LINGER, 0)
    push.connect(endpoint)
    try:
        drive(sup, lambda: sup.status()["capture:door"].last_heartbeat is not None, 20, "a beat")
        body = {"ts": time.time(), "pid": os.getpid(), "state": "online", "camera": "x"}
        for chunk in range(10):  # in chunks: both sides' high-water marks are 1,000
            for i in range(chunk * 500, chunk * 500 + 500):
                kind = ("capture:fake{}", "fake{}", "inference")[i % 3]
                push.send_multipart(raw({"process": kind.format(i), **body}))
            done = chunk * 500 + 500
            drive(sup, lambda n=done: sup.stray_heartbeats >= n, 30, f"{done} strays")
    finally:
        push.close()
        sup.shutdown()
    view = console.state.view()
    assert [c.name for c in view.cameras] == ["door"]
    assert {p.name for p in view.processes} == {"capture:door"}
    assert view.inference.stale  # the forged "inference" beats were not taken either
    assert len(console.state._seen) <= 1


def test_beats_without_the_childs_pid_do_not_keep_a_stopped_child_alive(
    tmp_path: Path, subprocess_env: dict[str, str]
) -> None:
    endpoint = f"ipc://{tmp_path}/hb.ipc"
    sup = Supervisor(
        [spec("worker", "beat", tmp_path, subprocess_env)],
        SupervisorConfig(
            heartbeat_timeout_s=1.0, heartbeat_startup_s=20, restart_backoff_initial_s=0.1
        ),
        heartbeat_endpoint=endpoint,
    )
    sup.start()
    ctx = zmq.Context.instance()
    push = ctx.socket(zmq.PUSH)
    push.setsockopt(zmq.LINGER, 0)
    push.connect(endpoint)
    old = None
    try:
        drive(sup, lambda: sup.status()["worker"].last_heartbeat is not None, 20, "a beat")
        old = sup.status()["worker"].pid
        os.kill(old, signal.SIGSTOP)

        def forge() -> bool:
            now = time.time()
            push.send_multipart(raw({"process": "worker", "ts": now}))  # no pid
            push.send_multipart(raw({"process": "worker", "ts": now, "pid": os.getpid()}))
            return sup.status()["worker"].starts == 2

        drive(sup, forge, 20, "the stopped child replaced")
        status = sup.status()["worker"]
    finally:
        push.close()
        sup.shutdown()
        if old and alive(old):
            os.kill(old, signal.SIGKILL)
    assert status.heartbeat_kills == 1 and status.last_exit.startswith("no heartbeat for")
    assert sup.bad_heartbeats > 0 and sup.stray_heartbeats > 0


def _watchdog_states() -> set[CameraState]:
    """Drive a real ``Watchdog`` through every transition it has, collecting the states."""
    settings = WatchdogSettings(
        stall_timeout_s=1, connect_timeout_s=1, backoff_initial_s=0.1, backoff_max_s=0.1,
        frozen_timeout_s=0, frozen_tolerance=0, frozen_check_s=0,
    )  # fmt: skip
    wd, seen = Watchdog(settings), set()
    seen.add(wd.state)  # offline before the first attempt
    wd.start(0.0)
    seen.add(wd.state)  # connecting
    wd.on_frame(0.1, (48, 64, 3), None)
    seen.add(wd.state)  # online
    wd.tick(5.0)
    seen.add(wd.state)  # stalled: no frame for stall_timeout_s
    wd.end()
    seen.add(wd.state)  # ended: a loop: false file played out
    return seen


def test_every_watchdog_state_reaches_the_dashboard_with_its_counters() -> None:
    """The capture body a child builds for each state it can be in is accepted by the parser
    the supervisor runs, and the dashboard shows the state and keeps the counters (an ended
    file camera used to be rejected as a whole, and its counters vanished)."""
    states = _watchdog_states()
    assert states == set(CameraState)
    for state in CameraState:
        body = CaptureStatus(
            camera="door",
            state=state,
            counters=CaptureCounters(frames_total=80, reconnects_total=1, snippets_total=5),
            info=CaptureInfo(source="file.avi", last_error="ended", errors={"stall": 1}),
        )
        beat = parse_heartbeat([TOPIC, encode("capture:door", body)])
        assert beat is not None and beat.problem == "" and beat.body == body, state
        dash = DashboardState(cameras=["door"])
        dash.update_heartbeat(beat, now=time.time())
        (door,) = dash.view(time.time()).cameras
        assert door.state == state and door.state is CameraState(state.value)
        assert (door.frames_total, door.reconnects_total, door.snippets_total) == (80, 1, 5)
    beat = parse_heartbeat(raw({"process": "capture:door", "ts": 1.0, "pid": 9, "state": "lost"}))
    assert beat is not None and beat.body is None and beat.problem.startswith("state:")
