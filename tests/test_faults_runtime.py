"""Faults found by independent testing (issue 20), runtime side: real monitors, sockets, files.

Case 11: a user's file at an ipc socket path is never deleted; the monitor says so in one line.
Case 4: too many cameras is one line from ``config check``; the janitor takes any number of
targets (stdin, not argv); a supervisor that crashes while starting leaves no lock file.
Case 6: a second monitor on the same storage.dir (another instance name) is refused in one line.
Case 7: a corrupt outbox stops the start in one line and is never written; moved aside only
with ``--move-corrupt-outbox``.
Case 5: a camera in a crash loop is parked (state, reason) and retried later; the rest run on.
Case 13: the next start of an instance removes what a dead earlier run of it left.
"""

from __future__ import annotations

import hashlib
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import zmq

from tests.config_support import rewrite_config, write_config_file
from tests.monitor_support import REPO, Monitor, alive, short_dir, wait_for, write_config
from tests.supervisor_support import child, drive, pids
from vadmon.alerts.outbox import Outbox
from vadmon.alerts.outbox_check import integrity_problem
from vadmon.config import SupervisorConfig, load_config
from vadmon.config.models import MAX_CAMERAS
from vadmon.errors import VadmonError
from vadmon.runtime.cleanup import Cleanup, start_janitor
from vadmon.runtime.instance_lock import acquire_instance_lock
from vadmon.runtime.supervisor import Supervisor
from vadmon.runtime.transport import bind, ipc_endpoint

CAMERA = {"lobby": "synthetic:w=64&h=48&fps=5"}


def run_cli(
    config: Path, env: dict[str, str], timeout: float = 60.0, *args: str
) -> subprocess.CompletedProcess:
    argv = [sys.executable, "-m", "vadmon", "run", "--config", str(config), "--no-dashboard"]
    argv += args
    return subprocess.run(argv, env=env, capture_output=True, text=True, timeout=timeout, cwd=REPO)


def test_bind_replaces_only_a_socket(tmp_path: Path) -> None:
    ipc = short_dir() / "ipc"
    ipc.mkdir(mode=0o700)
    user_file = ipc / "scores.sock"
    user_file.write_text("my data\n")
    ctx = zmq.Context()
    sock = ctx.socket(zmq.PULL)
    try:
        with pytest.raises(VadmonError, match="not a socket") as err:
            bind(sock, ipc_endpoint(ipc, "scores"))
        assert str(user_file) in err.value.line()
        assert user_file.read_text() == "my data\n"
    finally:
        sock.close(linger=0)
        ctx.term()


def test_monitor_refuses_a_user_file_at_a_socket_path(
    tmp_path: Path, demo_checkpoint: Path, subprocess_env: dict[str, str]
) -> None:
    ipc = short_dir() / "ipc"
    ipc.mkdir(mode=0o700)
    # a real checkpoint: run's preflight (weights) passes, so the socket check is what speaks
    config = write_config(tmp_path / "c.yaml", CAMERA, demo_checkpoint, ipc=ipc)
    user_file = ipc / "scores.sock"
    user_file.write_text("my data\n")
    result = run_cli(config, subprocess_env)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.returncode == 2, result.stderr[-3000:]
    assert len(lines) == 1 and "not a socket" in lines[0] and str(user_file) in lines[0], lines
    assert user_file.read_text() == "my data\n"
    assert not load_config(config).lock_path().exists()  # refused: nothing left behind


def test_camera_limit_is_one_line_from_config_check(tmp_path: Path) -> None:
    cams = {f"c{i}": {"source": "synthetic:"} for i in range(2_000)}
    config = {"model": {"mode": "vadclip", "checkpoint": "x.pt"}, "cameras": cams}
    path = write_config_file(tmp_path / "many.yaml", config)
    argv = [sys.executable, "-m", "vadmon", "config", "check", str(path)]
    result = subprocess.run(argv, capture_output=True, text=True, timeout=60, cwd=REPO)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.returncode == 2, result.stderr[-2000:]
    assert len(lines) == 1 and f"2000 cameras; one monitor runs at most {MAX_CAMERAS}" in lines[0]
    line = path.read_text().splitlines().index("cameras:") + 1
    assert f"{path}:{line} (cameras)" in lines[0]


def test_janitor_takes_more_targets_than_argv_could_hold(subprocess_env: dict[str, str]) -> None:
    ipc = short_dir()
    sockets = []
    for i in range(3):  # dead socket files, as killed children leave them
        leftover = socket.socket(socket.AF_UNIX)
        leftover.bind(str(ipc / f"s{i}.sock"))
        leftover.close()
        sockets.append(ipc / f"s{i}.sock")
    many = [ipc / f"capture-camera-with-a-long-name-{i:06d}.sock" for i in range(40_000)]
    cleanup = Cleanup(paths=[*many, *sockets, ipc])  # ~3 MB of paths: over ARG_MAX as argv
    write_fd, proc = start_janitor(cleanup, env=subprocess_env)
    os.close(write_fd)  # the supervisor is gone: clean up
    assert proc.wait(timeout=30) == 0
    assert not ipc.exists()


def test_a_crash_while_starting_leaves_no_lock_file(tmp_path: Path) -> None:
    lock = tmp_path / "vadmon-crash.lock"
    fd = acquire_instance_lock(lock, "crash")
    cleanup = Cleanup(lock_fd=fd, lock_path=lock)
    bad_endpoint = f"ipc://{tmp_path}/no/such/dir/hb.sock"  # binding it fails inside start()
    sup = Supervisor([], heartbeat_endpoint=bad_endpoint, cleanup=cleanup)
    with pytest.raises(Exception):  # noqa: B017 - whatever the crash, the lock must go
        sup.run()
    assert not lock.exists()
    os.close(acquire_instance_lock(lock, "crash", wait_s=0))  # and the instance is free


def test_second_monitor_on_the_same_storage_dir_is_refused(
    tmp_path: Path, demo_checkpoint: Path, subprocess_env: dict[str, str]
) -> None:
    storage = f"  dir: {tmp_path / 'shared-storage'}"
    first_cfg = write_config(tmp_path / "a.yaml", CAMERA, demo_checkpoint, storage=storage)
    second_cfg = write_config(tmp_path / "b.yaml", CAMERA, demo_checkpoint, storage=storage)
    first = Monitor(first_cfg, subprocess_env).start()
    try:
        first.child("alerts")
        result = run_cli(second_cfg, subprocess_env, timeout=60)
        lines = [line for line in result.stderr.splitlines() if line.strip()]
        assert result.returncode == 2, result.stderr[-3000:]
        assert len(lines) == 1 and "storage.dir" in lines[0] and "another monitor" in lines[0]
        assert "started" not in result.stderr  # no process of the second one ever ran
        assert first.proc is not None and first.proc.poll() is None  # the first runs on
    finally:
        first.kill_all()


def corrupt_outbox(db: Path, how: str) -> str:
    """A real outbox with rows, then damaged: pages 2-4 overwritten, or the file is garbage."""
    outbox = Outbox(db)
    with outbox.conn:
        for i in range(300):
            outbox.conn.execute("INSERT INTO endpoints(name) VALUES (?)", (f"{i:04d}" * 100,))
    outbox.close()
    data = bytearray(db.read_bytes())
    if how == "pages":
        data[4096 : 4 * 4096] = bytes(range(256)) * 48
    else:
        data = bytearray(b"not a database at all\n" * 100)
    db.write_bytes(bytes(data))
    return hashlib.sha256(db.read_bytes()).hexdigest()


@pytest.mark.parametrize("how", ["pages", "garbage"])
def test_corrupt_outbox_is_one_line_and_never_written(
    tmp_path: Path, demo_checkpoint: Path, subprocess_env: dict[str, str], how: str
) -> None:
    config = write_config(tmp_path / "c.yaml", CAMERA, demo_checkpoint)
    db = load_config(config).storage.outbox_db
    db.parent.mkdir(parents=True)
    digest = corrupt_outbox(db, how)
    result = run_cli(config, subprocess_env)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.returncode == 2, result.stderr[-3000:]
    assert len(lines) == 1 and "outbox database is corrupt" in lines[0], lines
    assert str(db) in lines[0] and "--move-corrupt-outbox" in lines[0]
    assert "writable" not in lines[0]
    assert hashlib.sha256(db.read_bytes()).hexdigest() == digest


def test_corrupt_outbox_moved_aside_only_on_the_flag(
    tmp_path: Path, demo_checkpoint: Path, subprocess_env: dict[str, str]
) -> None:
    config = write_config(tmp_path / "c.yaml", CAMERA, demo_checkpoint)
    db = load_config(config).storage.outbox_db
    db.parent.mkdir(parents=True)
    digest = corrupt_outbox(db, "pages")
    monitor = Monitor(config, subprocess_env, args=("--move-corrupt-outbox",)).start()
    try:
        monitor.child("alerts")
        assert wait_for(lambda: db.is_file() and db.stat().st_size > 0, 30)  # a new outbox
        assert integrity_problem(db) is None
        (aside,) = db.parent.glob(f"{db.name}.corrupt-*[0-9]")
        assert hashlib.sha256(aside.read_bytes()).hexdigest() == digest
        assert "was corrupt" in monitor.output()
        assert monitor.stop() == 0
    finally:
        monitor.kill_all()


def test_a_camera_in_a_crash_loop_is_parked_and_the_others_keep_running(
    tmp_path: Path, subprocess_env: dict[str, str]
) -> None:
    policy = SupervisorConfig(restart_backoff_initial_s=0.05, restart_backoff_max_s=0.1,
                              crash_loop_restarts=2, crash_loop_window_s=60, park_s=1.5)  # fmt: skip
    camera = child("capture:b", "crash", tmp_path, subprocess_env, essential=False)
    sup = Supervisor([camera, child("steady", "forever", tmp_path, subprocess_env)], policy)
    sup.start()
    try:
        drive(sup, lambda: sup.status()["capture:b"].state == "parked", 20, "camera parked")
        status = sup.status()
        assert status["capture:b"].last_exit.startswith("parked: crashed 3 times within 60 s")
        assert sup.failure is None and status["steady"].state == "running"  # before: all stopped
        assert len(pids(tmp_path, "capture:b")) == 3
        # after park_s it is tried afresh (a new crash loop, parked again), steady untouched
        drive(sup, lambda: len(pids(tmp_path, "capture:b")) > 3, 20, "retry after parking")
        assert sup.failure is None and alive(sup.status()["steady"].pid)
    finally:
        sup.shutdown()


def test_next_start_clears_what_a_dead_earlier_run_left(
    tmp_path: Path, demo_checkpoint: Path, subprocess_env: dict[str, str]
) -> None:
    config = write_config(tmp_path / "c.yaml", CAMERA, demo_checkpoint)
    # the default ipc folder (vadmon's own)
    rewrite_config(config, lambda c: c.update(transport={"hwm": 1000}))
    cfg = load_config(config)
    ipc = cfg.ipc_dir()
    ipc.mkdir(mode=0o700)
    for name in ("scores.sock", "supervisor.sock"):  # as SIGKILLed children leave them
        dead = socket.socket(socket.AF_UNIX)
        dead.bind(str(ipc / name))
        dead.close()
    segment = Path("/dev/shm") / f"{cfg.shm_prefix()}0badf00d.ring-lobby"
    segment.write_bytes(b"\0" * 4096)
    cfg.lock_path().write_text("999999999\n")  # the dead supervisor's pid, not held
    try:
        run_cli(config, subprocess_env, 60, "--duration", "3")
        assert not segment.exists() and not ipc.exists()  # before: both stayed forever
        assert not cfg.lock_path().exists()
    finally:
        segment.unlink(missing_ok=True)
