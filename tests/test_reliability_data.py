"""Issue 11, "data destroyed or lost": real monitors (``vadmon run``) whose shutdown, SIGKILL
or refusal must remove only what they created — never a user's folder, another instance's
shared memory, or a newer monitor's sockets.
"""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from capture_support import wait_for
from monitor_support import REPO, Listener, Monitor, marked_processes, short_dir, write_config

from vadmon.config import load_config

SOURCE = "synthetic:w=160&h=120&fps=10"


def segments(prefix: str) -> set[str]:
    return {p.name for p in Path("/dev/shm").glob(f"{prefix}*")}


def sockets(directory: Path) -> set[str]:
    return {p.name for p in directory.glob("*.sock")}


def running(mon: Monitor, listen: Listener, cams: list[str], timeout_s: float = 180) -> None:
    """Every camera online and the monitor scoring (so every process has made its files)."""
    ok = wait_for(lambda: all(listen.state(c) == "online" for c in cams), timeout_s, 0.2)
    assert ok and listen.wait_scores(cams[0], 1, timeout_s), mon.output()[-3000:]


@pytest.mark.slow
def test_ipc_dir_that_existed_survives_stop_and_sigkill(
    tmp_path: Path, subprocess_env: dict[str, str], demo_checkpoint: Path
) -> None:
    """``transport.ipc_dir`` = the user's own folder (here also ``storage.dir``): after an orderly
    stop and after a SIGKILL (janitor) the folder, its mode and everything in it are still
    there; only the socket files vadmon made are gone. Before: removed with everything in it."""
    folder = short_dir("vu-")
    os.chmod(folder, 0o755)
    keep = folder / "my-notes.txt"
    keep.write_text("precious")
    name = f"t{uuid.uuid4().hex[:10]}"
    cfg = write_config(
        tmp_path / "m.yaml", {"cam1": SOURCE}, demo_checkpoint, instance=name, ipc=folder,
        overrides={"storage": {"dir": folder}},
    )  # fmt: skip
    assert load_config(cfg).storage.dir == folder
    marker = uuid.uuid4().hex
    env = {**subprocess_env, "VADMON_TEST_MARK": marker}
    try:
        for how in (signal.SIGTERM, signal.SIGKILL):
            mon = Monitor(cfg, env).start()
            listen = Listener(folder, ["cam1"])
            try:
                running(mon, listen, ["cam1"])
                made = sockets(folder)
                assert {"capture-cam1.sock", "scores.sock", "supervisor.sock"} <= made
                assert all(stat.S_IMODE((folder / s).stat().st_mode) == 0o600 for s in made)
                assert (folder / "outbox.sqlite").exists()
                mon.stop(how)
                assert wait_for(lambda: marked_processes(marker) == [], 30), "janitor/children"
            finally:
                listen.close()
                mon.kill_all()
            assert keep.read_text() == "precious", how
            assert stat.S_IMODE(folder.stat().st_mode) == 0o755, how
            assert (folder / "outbox.sqlite").exists(), how
            assert sockets(folder) == set(), (how, sockets(folder))
            assert not load_config(cfg).lock_path().exists(), how  # the janitor removed it
    finally:
        for pid in marked_processes(marker):
            os.kill(pid, signal.SIGKILL)


@pytest.mark.slow
def test_stopping_one_instance_spares_another_whose_name_it_prefixes(
    tmp_path: Path, subprocess_env: dict[str, str], demo_checkpoint: Path
) -> None:
    """Instances ``<x>`` and ``<x>-b`` on one host: stopping ``<x>`` leaves ``<x>-b``'s rings
    alone and ``<x>-b`` keeps scoring. Before: ``<x>``'s cleanup unlinked ``vadmon-uid-<x>-*``,
    which matched ``<x>-b``'s segments too."""
    base = f"t{uuid.uuid4().hex[:8]}"
    cfg_b = write_config(
        tmp_path / "b.yaml", {"cam1": SOURCE}, demo_checkpoint, instance=base + "-b"
    )
    cfg_a = write_config(tmp_path / "a.yaml", {"cam1": SOURCE}, demo_checkpoint, instance=base)
    b, a = load_config(cfg_b), load_config(cfg_a)
    mon_b = Monitor(cfg_b, subprocess_env).start()
    listen_b = Listener(b.ipc_dir(), ["cam1"])
    mon_a = Monitor(cfg_a, subprocess_env).start()
    listen_a = Listener(a.ipc_dir(), ["cam1"])
    try:
        running(mon_b, listen_b, ["cam1"])
        running(mon_a, listen_a, ["cam1"])
        rings_b = segments(b.shm_prefix())
        assert len(rings_b) == 1 and len(segments(a.shm_prefix())) == 1
        assert mon_a.stop(signal.SIGTERM) == 0
        assert segments(a.shm_prefix()) == set()
        assert segments(b.shm_prefix()) == rings_b
        scored = len(listen_b.scores_for("cam1"))
        assert listen_b.wait_scores("cam1", scored + 2, 60), mon_b.output()[-3000:]
        assert mon_b.proc.poll() is None
    finally:
        listen_a.close()
        listen_b.close()
        mon_a.kill_all()
        mon_b.kill_all()


def run_vadmon(cfg: Path, env: dict[str, str], timeout: float = 120) -> tuple[int, str]:
    proc = subprocess.run(
        [sys.executable, "-m", "vadmon", "run", "--config", str(cfg), "--no-dashboard"],
        env=env, cwd=REPO, capture_output=True, text=True, timeout=timeout,
    )  # fmt: skip
    return proc.returncode, proc.stdout + proc.stderr


@pytest.mark.slow
def test_same_instance_refused_without_damage_and_a_newer_one_is_never_wiped(
    tmp_path: Path, subprocess_env: dict[str, str], demo_checkpoint: Path
) -> None:
    """A second monitor with the same ``instance:`` is refused in one line naming the key and
    deletes nothing; a monitor killed with SIGKILL whose janitor is still cleaning up never
    removes the files of the newer monitor of that instance. Before: the refused one removed
    the first one's ipc dir and rings, and the first then stopped (exit 2)."""
    name = f"t{uuid.uuid4().hex[:10]}"
    ipc = short_dir() / "ipc"
    cfg = write_config(
        tmp_path / "m.yaml", {"cam1": SOURCE}, demo_checkpoint, instance=name, ipc=ipc
    )
    other = tmp_path / "other.yaml"  # a different file, same instance name
    other.write_text(cfg.read_text())
    conf = load_config(cfg)
    first = Monitor(cfg, subprocess_env).start()
    listen = Listener(ipc, ["cam1"])
    second = None
    try:
        running(first, listen, ["cam1"])
        kids, files, rings = first.children(), sockets(ipc), segments(conf.shm_prefix())
        code, out = run_vadmon(other, subprocess_env)
        lines = [line for line in out.splitlines() if line.strip()]
        assert code == 2 and len(lines) == 1, out
        assert "instance:" in lines[0] and f"'{name}' is already running" in lines[0], out
        assert f"pid {first.pid}" in lines[0] and "Traceback" not in out
        assert sockets(ipc) == files and segments(conf.shm_prefix()) == rings
        assert first.children() == kids
        scored = len(listen.scores_for("cam1"))
        assert listen.wait_scores("cam1", scored + 2, 60), first.output()[-3000:]

        # SIGKILL the first; start the newer one at once: its janitor must not wipe the newer
        first.proc.kill()
        first.proc.wait(10)
        second = Monitor(other, subprocess_env).start()
        listen.close()
        listen = Listener(ipc, ["cam1"])
        running(second, listen, ["cam1"])
        assert {"capture-cam1.sock", "scores.sock", "supervisor.sock"} <= sockets(ipc)
        assert len(segments(conf.shm_prefix())) == 1
        scored = len(listen.scores_for("cam1"))
        assert listen.wait_scores("cam1", scored + 2, 60), second.output()[-3000:]
        assert second.stop() == 0
        assert segments(conf.shm_prefix()) == set() and not ipc.exists()
        assert wait_for(lambda: not conf.lock_path().exists(), 10)
    finally:
        listen.close()
        first.kill_all()
        if second is not None:
            second.kill_all()


def test_shipped_presets_have_distinct_instances() -> None:
    """ucf.yaml and xd.yaml side by side on one host: distinct ``instance:`` (lock, ipc, shm)."""
    names = {}
    for preset in sorted((REPO / "configs").glob("*.yaml")):
        text = preset.read_text()
        found = [
            ln.split(":", 1)[1].strip() for ln in text.splitlines() if ln.startswith("instance:")
        ]
        assert len(found) == 1, f"{preset.name} has no top-level instance:"
        assert found[0] not in names, f"{preset.name} and {names.get(found[0])} share an instance"
        names[found[0]] = preset.name


def cli(args: list[str], env: dict[str, str]) -> tuple[int, list[str]]:
    proc = subprocess.run(
        [sys.executable, "-m", "vadmon", *args],
        env=env, cwd=REPO, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    return proc.returncode, [ln for ln in (proc.stdout + proc.stderr).splitlines() if ln.strip()]


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("file:///srv/video.mp4", "unsupported URL scheme 'file'"),
        ("rtmps://cam.example/live", "unsupported URL scheme 'rtmps'"),
        ("synthetic:w=64&colour=red", "unknown synthetic option"),
    ],
)
def test_config_check_rejects_what_the_camera_would(
    tmp_path: Path, subprocess_env: dict[str, str], source: str, expected: str
) -> None:
    """``config check`` and ``vadmon run`` refuse, before anything starts, a source the capture
    process would refuse (before: the check said OK, and at run time the camera exited 2,
    which stopped every camera)."""
    ipc = short_dir() / "ipc"
    cfg = write_config(
        tmp_path / "m.yaml", {"good": SOURCE, "bad": source}, tmp_path / "x.pt", ipc=ipc
    )
    for args in (["config", "check", str(cfg)], ["run", "--config", str(cfg), "--no-dashboard"]):
        code, lines = cli(args, subprocess_env)
        assert code == 2 and len(lines) == 1, lines
        assert expected in lines[0] and "error:" in lines[0], lines
        assert "Traceback" not in lines[0]
    assert not ipc.exists()  # nothing was started or created


def test_read_only_storage_is_one_line_naming_the_path(
    tmp_path: Path, demo_checkpoint: Path, subprocess_env: dict[str, str]
) -> None:
    """``storage.dir`` on a read-only file system: one line naming the path, exit 2, nothing
    started (before: a traceback from mkdir or SQLite)."""
    store = tmp_path / "ro"
    store.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "ro,size=64k", "tmpfs", str(store)], capture_output=True
    )
    if mounted.returncode != 0:
        if os.environ.get("CI") == "true":
            pytest.fail("cannot mount a read-only tmpfs (needs root)")
        pytest.skip("cannot mount a read-only tmpfs (not root)")
    try:
        ipc = short_dir() / "ipc"
        cfg = write_config(tmp_path / "m.yaml", {"cam": SOURCE}, demo_checkpoint, ipc=ipc,
                           overrides={"storage": {"dir": store / "data"}})  # fmt: skip
        code, lines = cli(["run", "--config", str(cfg), "--no-dashboard"], subprocess_env)
        assert code == 2 and len(lines) == 1, lines
        assert "storage directory is not writable (Read-only file system)" in lines[0], lines
        assert f"storage.dir = {store / 'data'}" in lines[0]
        assert not ipc.exists() and not load_config(cfg).lock_path().exists()
    finally:
        subprocess.run(["umount", "-l", str(store)], capture_output=True)
