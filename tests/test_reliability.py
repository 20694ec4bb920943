"""RELIABILITY_CASES.md at system level: the real monitor (``vadmon run``: supervisor + capture +
inference + alerts processes) with faults injected from outside.

Component-level coverage of the other cases lives in test_transport, test_capture,
test_delivery, test_alerts, test_signing and test_supervisor (see docs/RELIABILITY.md).
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
import uuid
from pathlib import Path
from urllib.parse import quote

import cv2
import pytest
from capture_support import RtspServer, wait_for
from config_support import rewrite_config
from monitor_support import (
    REPO,
    Listener,
    Monitor,
    alive,
    marked_processes,
    rss_kib,
    write_config,
)
from webhook_receiver import Receiver

from vadmon.alerts.signing import generate_secret
from vadmon.capture.source import SyntheticSource
from vadmon.config import load_config
from vadmon.dashboard.console import MonitorConsole
from vadmon.runtime.heartbeat import Heartbeat
from vadmon.runtime.supervisor import Supervisor
from vadmon.settings import capture_settings

SOURCE = "synthetic:w=320&h=240&fps=10"


def no_traceback(mon: Monitor) -> None:
    assert "Traceback" not in mon.output(), mon.output()[-4000:]


def shm_segments(cfg: Path) -> list[str]:
    prefix = load_config(cfg).shm_prefix()
    return sorted(p.name for p in Path("/dev/shm").glob(f"{prefix}*"))


# --- case 1 + 2: inference SIGKILLed / SIGSTOPped ---------------------------------------------


@pytest.mark.slow
def test_inference_killed_or_stopped_capture_unaffected(
    tmp_path: Path, subprocess_env: dict[str, str], demo_checkpoint: Path
) -> None:
    cfg = write_config(
        tmp_path / "m.yaml", {"cam1": SOURCE}, demo_checkpoint,
        supervisor="  heartbeat_timeout_s: 12",
    )  # fmt: skip
    mon = Monitor(cfg, subprocess_env).start()
    listen = Listener(load_config(cfg).ipc_dir(), ["cam1"])
    try:
        assert listen.wait_scores("cam1", 2, 180), mon.output()[-3000:]
        capture = mon.child("capture:cam1")

        # SIGKILL: capture keeps going, drops are counted, inference comes back with backoff
        inference = mon.child("inference")
        drops = listen.counter("cam1", "snippet_drops_total")
        frames = listen.counter("cam1", "frames_total")
        os.kill(inference, signal.SIGKILL)
        killed_at = time.time()
        assert wait_for(lambda: listen.counter("cam1", "snippet_drops_total") > drops, 60)
        assert listen.counter("cam1", "frames_total") > frames
        new = mon.child("inference", 60, not_pid=inference)
        assert listen.wait_scores("cam1", 2, 120, since=killed_at), mon.output()[-3000:]
        assert "inference killed by SIGKILL; restarting in" in mon.output()
        assert mon.children()["capture:cam1"] == capture  # never restarted, never blocked

        # short SIGSTOP (below the heartbeat timeout): afterwards the newest snippets are
        # scored; the ones that aged meanwhile are skipped, not worked off as a backlog
        time.sleep(2)
        last_before = listen.scores_for("cam1")[-1].snippet_index
        snippets = listen.counter("cam1", "snippets_total")
        os.kill(new, signal.SIGSTOP)
        stopped = time.monotonic()
        # snippets age in wall time (6 s), and capture must really have made ≥ 3 more meanwhile
        # (its own count, however loaded the host); both well below the heartbeat timeout
        grew = wait_for(
            lambda: (
                time.monotonic() - stopped >= 6
                and listen.counter("cam1", "snippets_total") >= snippets + 3
            ),
            10,
        )
        os.kill(new, signal.SIGCONT)
        assert grew, "capture produced fewer than 3 snippets in 10 s"
        resumed = time.time()
        assert listen.wait_scores("cam1", 2, 30, since=resumed)
        after = listen.scores_for("cam1", since=resumed)
        assert all(resumed - m.t_end < 5.0 for m in after), [resumed - m.t_end for m in after]
        assert after[0].snippet_index >= last_before + 2, (last_before, after[0].snippet_index)
        assert mon.children()["inference"] == new

        # long SIGSTOP: the application heartbeat notices; the supervisor replaces it.
        # Meanwhile capture memory stays flat and its drops are counted (case 2).
        drops = listen.counter("cam1", "snippet_drops_total")
        os.kill(new, signal.SIGSTOP)
        stopped_at = time.time()
        time.sleep(2)
        rss_early = rss_kib(capture)
        third = mon.child("inference", 45, not_pid=new)
        rss_late = rss_kib(capture)
        assert time.time() - stopped_at >= 11.5  # not before the heartbeat timeout
        assert not alive(new)
        assert "inference: no heartbeat for" in mon.output()
        # queued while stopped (bounded by HWMs), dropped and counted while it is replaced
        assert wait_for(lambda: listen.counter("cam1", "snippet_drops_total") > drops, 30)
        assert rss_late - rss_early < 8 * 1024, (rss_early, rss_late)
        assert listen.wait_scores("cam1", 1, 120, since=time.time()), mon.output()[-3000:]
        assert mon.children()["inference"] == third
        assert mon.stop() == 0
        no_traceback(mon)
    finally:
        listen.close()
        mon.kill_all()


# --- case 7 (+16 corrupt video): restarts in any order, SIGTERM with dead downstream --------


def truncated_video(path: Path, vtest: Path) -> Path:
    path.write_bytes(vtest.read_bytes()[:6000])
    return path


@pytest.mark.slow
def test_restart_any_order_and_sigterm_with_dead_downstream(
    tmp_path: Path, subprocess_env: dict[str, str], demo_checkpoint: Path, vtest_path: Path
) -> None:
    broken = truncated_video(tmp_path / "broken.avi", vtest_path)
    cfg = write_config(
        tmp_path / "m.yaml", {"cam1": SOURCE, "broken": str(broken)}, demo_checkpoint
    )
    conf = load_config(cfg)
    mon = Monitor(cfg, subprocess_env).start()
    listen = Listener(conf.ipc_dir(), ["cam1", "broken"])
    try:
        assert listen.wait_scores("cam1", 2, 180), mon.output()[-3000:]
        # capture restarted while inference runs: its snippets reach inference again
        capture = mon.child("capture:cam1")
        os.kill(capture, signal.SIGKILL)
        killed_at = time.time()
        mon.child("capture:cam1", 30, not_pid=capture)
        assert listen.wait_scores("cam1", 2, 60, since=killed_at), mon.output()[-3000:]
        # alerts restarted: it reconnects to inference's scores by itself (no crash loop)
        alerts = mon.child("alerts")
        os.kill(alerts, signal.SIGKILL)
        mon.child("alerts", 30, not_pid=alerts)
        # the truncated video (a few frames, then garbage): errors, retries, monitor unharmed
        assert wait_for(lambda: listen.counter("broken", "reconnects_total") >= 2, 60), mon.output()
        assert listen.status("broken").info.last_error  # retried after an error each time
        assert mon.proc.poll() is None
        assert shm_segments(cfg)
        # SIGTERM with inference dead and alerts wedged: still down within the deadline
        os.kill(mon.child("inference"), signal.SIGKILL)
        os.kill(mon.child("alerts"), signal.SIGSTOP)
        kids = list(mon.children().values())
        started = time.monotonic()
        assert mon.stop(timeout_s=40) == 0
        took = time.monotonic() - started
        assert took < conf.supervisor.shutdown_deadline_s + 4, took
        assert not any(alive(pid) for pid in kids)
        assert shm_segments(cfg) == []
        assert not conf.ipc_dir().exists()
        no_traceback(mon)
    finally:
        listen.close()
        mon.kill_all()


@pytest.mark.slow
def test_monitor_sigkill_leaves_no_orphans_segments_or_sockets(
    tmp_path: Path, subprocess_env: dict[str, str], demo_checkpoint: Path
) -> None:
    marker = uuid.uuid4().hex
    env = {**subprocess_env, "VADMON_TEST_MARK": marker}
    cfg = write_config(tmp_path / "m.yaml", {"a": SOURCE, "b": SOURCE}, demo_checkpoint)
    conf = load_config(cfg)
    mon = Monitor(cfg, env).start()
    listen = Listener(conf.ipc_dir(), ["a", "b"])
    try:
        assert wait_for(lambda: listen.state("a") == listen.state("b") == "online", 120)
        mon.child("inference")
        assert len(shm_segments(cfg)) == 2 and list(conf.ipc_dir().glob("*.sock"))
        mon.proc.kill()
        mon.proc.wait(10)
        assert wait_for(lambda: marked_processes(marker) == [], 20), marked_processes(marker)
        assert wait_for(lambda: not shm_segments(cfg) and not conf.ipc_dir().exists(), 10)
    finally:
        listen.close()
        for pid in marked_processes(marker):
            os.kill(pid, signal.SIGKILL)


# --- case 9: an RTSP password with @ : % / never leaks ---------------------------------------

PASSWORD = "p@ss:w%rd/x"


def flash_video(path: Path, frames: int = 200, red: tuple[int, int] = (60, 110)) -> Path:
    """Synthetic-camera frames at 10 fps with a red flash (what the demo model fires on)."""
    src = SyntheticSource(width=320, height=240, fps=10.0)
    out = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10.0, (320, 240))
    for n in range(frames):
        frame = src.render(n)
        if red[0] <= n < red[1]:
            frame[:, :] = (0, 0, 255)
        out.write(frame)
    out.release()
    return path


def heartbeats_from(listen: Listener) -> list[Heartbeat]:
    """The capture processes' published beats, parsed as the supervisor parses them."""
    return [beat for items in listen.statuses.values() for _, beat in items[-3:]]


@pytest.mark.slow
def test_rtsp_password_never_leaks(
    tmp_path: Path, subprocess_env: dict[str, str], demo_checkpoint: Path
) -> None:
    secret = generate_secret()
    server = RtspServer(video=flash_video(tmp_path / "flash.avi"), user="bob", password=PASSWORD)
    server.start()
    env = {**subprocess_env, "HOOK_SECRET": secret}
    try:
        with Receiver([secret]) as hook:
            hooks = f"""webhooks:
  - name: receiver
    url: {hook.url}
    secret: "${{HOOK_SECRET}}"
    allow_private: true
    backoff_initial_s: 0.3
    backoff_max_s: 1"""
            cfg = write_config(tmp_path / "m.yaml", {"door": server.url()}, demo_checkpoint,
                               extra=hooks)  # fmt: skip
            conf = load_config(cfg, env)
            mon = Monitor(cfg, env).start()
            listen = Listener(conf.ipc_dir(), ["door"])
            try:
                assert wait_for(lambda: hook.verified(), 180), mon.output()[-3000:]
                assert listen.state("door") == "online"
                sup = Supervisor([])
                console = MonitorConsole(conf, sup, dashboard=False)
                for beat in heartbeats_from(listen):
                    console.on_heartbeat(beat)
                lines = console.status_lines()
                assert lines and "door: online" in lines[0]
                status_text = repr(listen.statuses["door"])
                assert mon.stop() == 0
            finally:
                listen.close()
                mon.kill_all()
            rows = []
            with sqlite3.connect(conf.storage.outbox_db) as db:
                for table in ("events", "deliveries"):
                    rows += [repr(r) for r in db.execute(f"SELECT * FROM {table}")]  # noqa: S608
            assert rows
            payloads = [r.body.decode() + json.dumps(r.headers) for r in hook.requests]
    finally:
        server.kill()
    output = mon.output()
    assert "rtsp://***@127.0.0.1" in output, output[-3000:]  # the URL is logged, redacted
    texts = {
        "monitor output (all processes)": output,
        "status lines": "\n".join(lines),
        "capture status messages": status_text,
        "outbox rows": "\n".join(rows),
        "webhook requests": "\n".join(payloads),
        "config repr": repr(conf) + str(conf.cameras["door"]),
        "capture settings repr": repr(capture_settings(conf, "door")),
    }
    for spelling in (PASSWORD, quote(PASSWORD, safe=""), "w%rd", "p@ss"):
        for where, text in texts.items():
            assert spelling not in text, f"password ({spelling}) leaked in {where}"
    no_traceback(mon)


def test_capture_and_supervisor_do_not_load_torch(subprocess_env: dict[str, str]) -> None:
    """Per-camera memory (case 2): torch is ~500 MB and belongs to the inference process only."""
    code = (
        "import sys, vadmon.capture.__main__, vadmon.monitor, vadmon.settings, vadmon.commands.run, vadmon.dashboard.console, "
        "vadmon.alerts.__main__, vadmon.cli; vadmon.cli.build_parser(); print(sorted("
        "m for m in ('torch', 'open_clip') if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], env=subprocess_env, capture_output=True, text=True,
        timeout=120,
    )  # fmt: skip
    assert out.returncode == 0 and out.stdout.strip() == "[]", out.stdout + out.stderr
    from vadmon.commands.extract import CROP_MODE_NAMES
    from vadmon.model.crops import CROP_MODES

    assert tuple(sorted(CROP_MODES)) == CROP_MODE_NAMES


# --- case 16: bad input through vadmon run / run_monitor.py ----------------------------------


def run_cli(argv: list[str], env: dict[str, str], timeout: float = 240) -> tuple[int, str]:
    out = subprocess.run(
        [sys.executable, *argv], env=env, cwd=REPO, capture_output=True, text=True,
        timeout=timeout,
    )  # fmt: skip
    return out.returncode, out.stdout + out.stderr


def one_error_line(code: int, text: str, expected: str) -> None:
    errors = [line for line in text.splitlines() if "error:" in line]
    assert code == 2, text[-3000:]
    assert "Traceback" not in text, text[-3000:]
    assert len(errors) == 1 and expected in errors[0], errors or text[-3000:]


def test_bad_config_key_and_missing_file(tmp_path: Path, subprocess_env: dict[str, str]) -> None:
    cfg = write_config(tmp_path / "m.yaml", {"cam": SOURCE}, tmp_path / "x.pt")
    typo = lambda c: c["defaults"].update(stall_timout_s=c["defaults"].pop("stall_timeout_s"))  # noqa: E731
    line = rewrite_config(cfg, typo).read_text().splitlines().index("  stall_timout_s: 3") + 1
    code, out = run_cli(["-m", "vadmon", "run", "--config", str(cfg)], subprocess_env)
    one_error_line(code, out, "unknown key 'stall_timout_s'")
    assert f"m.yaml:{line}" in out and "did you mean 'stall_timeout_s'" in out
    code, out = run_cli(["run_monitor.py", "--config", str(tmp_path / "nope.yaml")], subprocess_env)
    one_error_line(code, out, "config file not found")


ZEROSHOT = {"mode": "zeroshot", "clip_pretrained": "openai"}


@pytest.mark.slow
@pytest.mark.parametrize(
    ("arch", "expected"),
    [
        ("ViT-Nope-99", "unknown CLIP architecture 'ViT-Nope-99'"),
        ("ViT-B-16", "open_clip weights ViT-B-16/openai are not in the local cache"),
    ],
)
def test_unknown_clip_or_no_weights_offline(
    tmp_path: Path, subprocess_env: dict[str, str], arch: str, expected: str
) -> None:
    cfg = write_config(tmp_path / "m.yaml", {"cam": SOURCE}, tmp_path / "x.pt")
    rewrite_config(cfg, lambda c: c.update(model={**ZEROSHOT, "clip_arch": arch}))
    hf_home = tmp_path / "hf"  # an empty cache: nothing to find offline
    env = {**subprocess_env, "HF_HUB_OFFLINE": "1", "HF_HOME": str(hf_home)}
    code, out = run_cli(["-m", "vadmon", "run", "--config", str(cfg), "--no-dashboard"], env)
    one_error_line(code, out, expected)
    assert not load_config(cfg).ipc_dir().exists()  # everything stopped and cleaned up
