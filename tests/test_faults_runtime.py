"""Faults found by independent testing (issue 20), runtime side: real monitors, sockets, files.

Case 11: a user's file at an ipc socket path is never deleted; the monitor says so in one line.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import zmq

from tests.monitor_support import REPO, short_dir, write_config
from vadmon.config import load_config
from vadmon.errors import VadmonError
from vadmon.runtime.transport import bind, ipc_endpoint

CAMERA = {"lobby": "synthetic:w=64&h=48&fps=5"}


def run_cli(
    config: Path, env: dict[str, str], timeout: float = 60.0
) -> subprocess.CompletedProcess:
    argv = [sys.executable, "-m", "vadmon", "run", "--config", str(config), "--no-dashboard"]
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
    tmp_path: Path, subprocess_env: dict[str, str]
) -> None:
    ipc = short_dir() / "ipc"
    ipc.mkdir(mode=0o700)
    config = write_config(tmp_path / "c.yaml", CAMERA, tmp_path / "unused.pt", ipc=ipc)
    user_file = ipc / "scores.sock"
    user_file.write_text("my data\n")
    result = run_cli(config, subprocess_env)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.returncode == 2, result.stderr[-3000:]
    assert len(lines) == 1 and "not a socket" in lines[0] and str(user_file) in lines[0], lines
    assert user_file.read_text() == "my data\n"
    assert not load_config(config).lock_path().exists()  # refused: nothing left behind
