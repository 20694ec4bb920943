"""The shipped split-host example configs, run against each other as documented in
docs/MULTI_HOST.md: the camera host has no ``model`` section and no weights; the GPU host
scores its snippets and raises the event for its red flash."""

from __future__ import annotations

import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from capture_support import free_port, wait_for
from link_support import keys_generate

REPO = Path(__file__).resolve().parent.parent


NOT_SENT = "not sent: the inference host is not connected or not keeping up"


def shipped(name: str, work: Path, **replace: str) -> Path:
    """``configs/NAME`` copied into ``work`` with test-local values (port, instance, model)."""
    text = (REPO / "configs" / name).read_text()
    for old, new in replace.items():
        assert old in text, f"{old!r} no longer in configs/{name}"
        text = text.replace(old, new)
    path = work / name
    path.write_text(text)
    return path


def start(cfg: Path, role: str, env: dict[str, str], log: Path) -> subprocess.Popen:
    argv = [sys.executable, "-m", "vadmon", "run", "--config", str(cfg), "--role", role]
    with open(log, "w") as out:  # the child keeps its own descriptor
        return subprocess.Popen(
            [*argv, "--no-dashboard"], cwd=cfg.parent, env=env, stdout=out,
            stderr=subprocess.STDOUT,
        )  # fmt: skip


def check(cfg: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "vadmon", "config", "check", str(cfg)],
        cwd=cfg.parent, env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip


@pytest.mark.slow
def test_shipped_split_configs_run_against_each_other(tmp_path, demo_checkpoint, subprocess_env):
    keys = tmp_path / "keys"
    for name in ("server", "camhost1"):
        keys_generate(subprocess_env, keys, name)
    (keys / "allowed").mkdir()
    shutil.copy(keys / "camhost1.key", keys / "allowed" / "camhost1.key")
    port, tag = str(free_port()), uuid.uuid4().hex[:8]
    cam = shipped(
        "split-camera-host.yaml", tmp_path, **{"127.0.0.1:5555": f"127.0.0.1:{port}",
                                               "site-cameras": f"c{tag}"},
    )  # fmt: skip
    gpu = shipped(
        "split-gpu-host.yaml", tmp_path, **{"0.0.0.0:5555": f"127.0.0.1:{port}",
                                            "site-gpu": f"g{tag}",
                                            "models/vadclip-ucf.pt": str(demo_checkpoint)},
    )  # fmt: skip
    env = dict(subprocess_env)
    cam_check, gpu_check = check(cam, env), check(gpu, env)
    assert cam_check.returncode == 0 and "model: none (capture only" in cam_check.stdout
    assert gpu_check.returncode == 0, gpu_check.stderr
    # the same capture-only file is refused where inference would run
    both = subprocess.run(
        [sys.executable, "-m", "vadmon", "run", "--config", str(cam), "--role", "inference"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert both.returncode == 2 and "missing required key 'model'" in both.stderr
    gpu_log, cam_log = tmp_path / "gpu.log", tmp_path / "cam.log"
    # the camera host first: until the GPU host listens, its snippets are counted and said
    procs = [start(cam, "capture", env, cam_log)]
    try:
        assert wait_for(lambda: NOT_SENT in cam_log.read_text(), 60), cam_log.read_text()[-2000:]
        procs.append(start(gpu, "inference", env, gpu_log))
        assert wait_for(lambda: "event start camera=lobby" in gpu_log.read_text(), 180), (
            gpu_log.read_text()[-3000:] + cam_log.read_text()[-2000:]
        )
        assert "camera lobby: snippets reach the inference host again" in cam_log.read_text()
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
    assert all(p.returncode == 0 for p in procs), [p.returncode for p in procs]
    assert "Traceback" not in gpu_log.read_text() + cam_log.read_text()
