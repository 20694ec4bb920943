"""Supervisor with real child processes: restarts, crash loops, shutdown, PDEATHSIG, heartbeats."""

from __future__ import annotations

import json
import os
import random
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
import zmq
from monitor_support import alive, marked_processes, write_config
from supervisor_support import CHILD, child, drive, pids
from wait_support import wait_for

from vadmon.config import SupervisorConfig
from vadmon.runtime.backoff import backoff_delay
from vadmon.runtime.child import ChildSpec
from vadmon.runtime.cleanup import Cleanup
from vadmon.runtime.supervisor import Supervisor

RUNNER = Path(__file__).with_name("sup_runner.py")  # the supervisor as its own process
pytestmark = pytest.mark.timeout(60)


def start_supervisor_process(
    tmp_path: Path, children: list[dict], policy: dict, env: dict[str, str], *extra: str
) -> subprocess.Popen:
    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps({"children": children, "policy": policy}))
    argv = [sys.executable, str(RUNNER), "--spec", str(spec), *extra]
    return subprocess.Popen(argv, env=env, stderr=subprocess.PIPE, text=True)


def child_dict(name: str, mode: str, directory: Path, **kw) -> dict:
    return {"name": name, "argv": [sys.executable, str(CHILD), mode, str(directory)], **kw}


def test_backoff_grows_and_is_capped() -> None:
    rng = random.Random(0)
    delays = [backoff_delay(n, 0.5, 4.0, rng) for n in range(1, 8)]
    caps = [0.5, 1, 2, 4, 4, 4, 4]
    for delay, cap in zip(delays, caps, strict=True):
        assert cap / 2 <= delay <= cap


def test_crashed_child_restarted_with_backoff(tmp_path: Path, subprocess_env) -> None:
    policy = SupervisorConfig(
        restart_backoff_initial_s=0.2, restart_backoff_max_s=1.0, crash_loop_restarts=20
    )
    sup = Supervisor(
        [child("crasher", "crash", tmp_path, subprocess_env)], policy, rng=random.Random(1)
    )
    backoffs: list[float] = []
    sup.start()
    try:

        def record() -> bool:
            st = sup.status()["crasher"]
            if st.restarts > len(backoffs):
                backoffs.append(st.last_backoff_s)
            return st.starts >= 4 and len(pids(tmp_path, "crasher")) >= 4

        drive(sup, record, 20, "four starts")
        status = sup.status()["crasher"]
        assert status.last_exit == "exit code 3"
        assert status.restarts >= 3
        assert 0.1 <= backoffs[0] <= 0.2 and 0.2 <= backoffs[1] <= 0.4 and 0.4 <= backoffs[2] <= 0.8
        assert len(set(pids(tmp_path, "crasher"))) >= 4
    finally:
        sup.shutdown()
    assert not any(alive(p) for p in pids(tmp_path, "crasher"))


def test_crash_loop_stops_everything(tmp_path: Path, subprocess_env) -> None:
    policy = {
        "restart_backoff_initial_s": 0.05,
        "restart_backoff_max_s": 0.1,
        "crash_loop_restarts": 2,
        "crash_loop_window_s": 60,
    }
    children = [child_dict("crasher", "crash", tmp_path), child_dict("steady", "forever", tmp_path)]
    proc = start_supervisor_process(tmp_path, children, policy, subprocess_env)
    _, stderr = proc.communicate(timeout=30)
    assert proc.returncode == 1, stderr
    assert "child 'crasher' crashed 3 times within 60 s (last: exit code 3)" in stderr
    assert len(pids(tmp_path, "crasher")) == 3  # first start + K=2 restarts
    steady = pids(tmp_path, "steady")
    assert steady and not any(alive(p) for p in steady)


def test_sigterm_stops_all_children_even_stubborn_ones(tmp_path: Path, subprocess_env) -> None:
    marker = uuid.uuid4().hex
    env = {**subprocess_env, "VADMON_TEST_MARK": marker}
    children = [
        child_dict("steady", "forever", tmp_path),
        child_dict("stubborn", "ignore_term", tmp_path),
    ]
    proc = start_supervisor_process(tmp_path, children, {"shutdown_deadline_s": 1.5}, env)
    try:
        # a pid line means that child is ready (the stubborn one has installed its SIG_IGN)
        assert wait_for(lambda: pids(tmp_path, "steady") and pids(tmp_path, "stubborn"), 20), (
            "children"
        )
        proc.send_signal(signal.SIGTERM)
        _, stderr = proc.communicate(timeout=15)
    finally:
        proc.kill()
    assert proc.returncode == 0, stderr
    assert "stubborn ignored SIGTERM; sending SIGKILL" in stderr
    assert "steady ignored" not in stderr
    for name in ("steady", "stubborn"):
        assert not any(alive(p) for p in pids(tmp_path, name))
    assert marked_processes(marker) == []


def test_sigkill_of_supervisor_leaves_no_orphans_or_files(tmp_path: Path, subprocess_env) -> None:
    marker = uuid.uuid4().hex
    env = {**subprocess_env, "VADMON_TEST_MARK": marker}
    ipc_dir = tmp_path / "ipc"
    ipc_dir.mkdir(mode=0o700)
    leftover = socket.socket(socket.AF_UNIX)  # a dead socket file, as a child leaves one
    leftover.bind(str(ipc_dir / "frames.ipc"))
    leftover.close()
    prefix = f"vadmon-test-{marker[:8]}-"
    shm = Path("/dev/shm") / f"{prefix}ring-lobby"
    shm.write_bytes(b"\0" * 4096)
    children = [
        child_dict("steady", "forever", tmp_path),
        child_dict("stubborn", "ignore_term", tmp_path),
    ]
    made = ("--cleanup-path", str(ipc_dir / "frames.ipc"), "--cleanup-path", str(ipc_dir))
    extra = (*made, "--shm-prefix", prefix)  # what it made: the file, then its directory
    proc = start_supervisor_process(tmp_path, children, {}, env, *extra)
    try:
        assert wait_for(lambda: pids(tmp_path, "steady") and pids(tmp_path, "stubborn"), 20), (
            "children"
        )
        proc.kill()
        proc.communicate(timeout=10)
        assert wait_for(lambda: marked_processes(marker) == [], 10), "children and janitor to exit"
        assert wait_for(lambda: not ipc_dir.exists() and not shm.exists(), 10), "janitor cleanup"
    finally:
        proc.kill()
        shm.unlink(missing_ok=True)
        for pid in marked_processes(marker):
            os.kill(pid, signal.SIGKILL)


def test_sigstopped_child_detected_by_heartbeat_and_replaced(
    tmp_path: Path, subprocess_env
) -> None:
    endpoint = f"ipc://{tmp_path}/hb.ipc"
    policy = SupervisorConfig(
        heartbeat_timeout_s=1.0, heartbeat_startup_s=20, restart_backoff_initial_s=0.1
    )
    spec = child("worker", "beat", tmp_path, subprocess_env, heartbeat=True)
    sup = Supervisor([spec], policy, heartbeat_endpoint=endpoint)
    sup.start()
    old = None
    try:
        drive(sup, lambda: sup.status()["worker"].last_heartbeat is not None, 20, "heartbeat")
        old = sup.status()["worker"].pid
        ctx = zmq.Context.instance()
        push = ctx.socket(zmq.PUSH)
        push.setsockopt(zmq.LINGER, 0)
        push.connect(endpoint)
        push.send_multipart([b"a", b"b", b"c"])
        push.send(b"not json")
        forged = {"process": "worker", "ts": time.time(), "pid": 1}  # not the child's pid
        push.send_multipart([b"status", json.dumps(forged).encode()])
        no_pid = {"process": "worker", "ts": time.time()}  # cannot prove anything alive
        push.send_multipart([b"status", json.dumps(no_pid).encode()])
        drive(sup, lambda: sup.bad_heartbeats == 3 and sup.stray_heartbeats >= 1, 10, "rejects")
        push.close()
        os.kill(old, signal.SIGSTOP)
        drive(sup, lambda: sup.status()["worker"].starts == 2, 20, "replacement")
        status = sup.status()["worker"]
        assert status.heartbeat_kills == 1 and status.restarts == 1
        assert status.last_exit.startswith("no heartbeat for")
        assert status.pid != old and not alive(old)
        before = status.last_heartbeat
        drive(sup, lambda: sup.status()["worker"].last_heartbeat != before, 20, "new heartbeats")
    finally:
        sup.shutdown()
        if old and alive(old):
            os.kill(old, signal.SIGKILL)
    assert not any(alive(p) for p in pids(tmp_path, "worker"))


def test_systemd_notify_ready_and_stopping(tmp_path: Path, subprocess_env) -> None:
    address = str(tmp_path / "notify.sock")
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as notify:
        notify.bind(address)
        notify.settimeout(20)
        env = {**subprocess_env, "NOTIFY_SOCKET": address}
        children = [child_dict("steady", "forever", tmp_path)]
        proc = start_supervisor_process(tmp_path, children, {}, env, "--systemd")
        try:
            assert notify.recv(4096).decode().startswith("READY=1")
            proc.send_signal(signal.SIGTERM)
            assert notify.recv(4096).decode() == "STOPPING=1"
            proc.communicate(timeout=15)
        finally:
            proc.kill()
    assert proc.returncode == 0


@pytest.mark.parametrize(
    "mode, expected_rc, state", [("exit0", 0, "exited"), ("crash", 1, "failed")]
)
def test_non_restarting_child(
    tmp_path: Path, subprocess_env, mode: str, expected_rc: int, state: str
) -> None:
    sup = Supervisor([child("once", mode, tmp_path, subprocess_env, restart=False)])
    assert sup.run() == expected_rc
    assert sup.status()["once"].state == state
    assert len(pids(tmp_path, "once")) == 1


def test_orderly_shutdown_runs_cleanup(tmp_path: Path, subprocess_env) -> None:
    target = tmp_path / "ipc"
    target.mkdir()
    called: list[str] = []
    cleanup = Cleanup(paths=[target], hooks=[lambda: called.append("hook")])
    sup = Supervisor([child("steady", "forever", tmp_path, subprocess_env)], cleanup=cleanup)
    sup.start()
    assert wait_for(lambda: bool(pids(tmp_path, "steady")), 20), "child"
    sup.shutdown()
    assert called == ["hook"] and not target.exists()
    assert sup.status()["steady"].state == "stopped"


def test_bad_input_from_a_camera_keeps_the_others_running(tmp_path: Path, subprocess_env) -> None:
    """Exit code 2 from a non-essential child (a camera): it stays down, its reason shown, and
    the rest keep running. Before: any child's exit 2 stopped everything. An essential child's
    exit 2 still stops the monitor with exit 2."""
    camera = child("camera", "bad_input", tmp_path, subprocess_env, essential=False)
    sup = Supervisor(
        [camera, child("steady", "forever", tmp_path, subprocess_env)],
        heartbeat_endpoint=f"ipc://{tmp_path}/hb.sock",
    )
    sup.start()
    try:
        drive(sup, lambda: sup.status()["camera"].state == "failed", 20, "camera to fail")
        for _ in range(20):  # two seconds more: no restart, no stop
            sup.poll(0.1)
        status = sup.status()
        reason = "bad input, not restarted: bad source in config: in cameras.door.source"
        assert status["camera"].last_exit == reason  # the child's own line, shown
        assert status["camera"].starts == 1 and sup.failure is None
        assert status["steady"].state == "running" and alive(status["steady"].pid)
    finally:
        sup.shutdown()
    core = Supervisor([child("inference", "bad_input", tmp_path, subprocess_env)])
    assert core.run() == 2


def test_a_real_process_reports_its_bad_input_line(tmp_path: Path, subprocess_env) -> None:
    """The inference process on an unreadable checkpoint exits 2 through the one entry helper
    (``runtime/entry.py``), which reports its error line: the supervisor shows that line as
    the reason, not a bare "exit code 2" (before, only capture reported it)."""
    checkpoint = tmp_path / "broken.pt"
    checkpoint.write_bytes(b"not a checkpoint")
    cfg = write_config(tmp_path / "m.yaml", {"door": "synthetic:w=64&h=48&fps=5"}, checkpoint)
    argv = [sys.executable, "-m", "vadmon.inference", "--config", str(cfg)]
    spec = ChildSpec("inference", argv, env=subprocess_env, essential=False)
    sup = Supervisor([spec], heartbeat_endpoint=f"ipc://{tmp_path}/hb.sock")
    sup.start()
    try:
        drive(sup, lambda: "checkpoint" in sup.status()["inference"].last_exit, 90, "reason")
    finally:
        sup.shutdown()
    status = sup.status()["inference"]
    assert status.state == "failed" and status.starts == 1
    assert status.last_exit.startswith("bad input, not restarted: ")
