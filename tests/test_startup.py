"""Start-up honesty: ``vadmon run`` refuses what ``config check`` refuses, with the same lines,
before any child starts; missing weights are named by kind with the way to get them."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.config_support import write_config
from vadmon.startup import weights

REPO = Path(__file__).resolve().parent.parent


def vadmon(*argv: str, cwd: Path = REPO, env: dict | None = None) -> tuple[int, str, str, float]:
    """Run ``python -m vadmon ARGV`` as a user would; returns rc, stdout, stderr, seconds."""
    full = {**os.environ, "PYTHONPATH": str(REPO), **(env or {})}
    t0 = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-m", "vadmon", *argv],
        cwd=cwd,
        env=full,
        capture_output=True,
        text=True,
        timeout=120,
    )
    return proc.returncode, proc.stdout, proc.stderr, time.monotonic() - t0


def error_lines(text: str) -> list[str]:
    return [line.partition("error: ")[2] for line in text.splitlines() if "error: " in line]


@pytest.fixture()
def empty_hub(tmp_path: Path) -> dict[str, str]:
    """An empty Hugging Face cache: the open_clip tag is absent, whatever this host has."""
    (tmp_path / "hub").mkdir()
    return {"HF_HUB_CACHE": str(tmp_path / "hub"), "HF_HUB_OFFLINE": "1"}


@pytest.mark.parametrize(
    "case",
    ["checkpoint", "file camera", "rtsp//host"],
)
def test_run_refuses_what_check_refuses_before_any_child(tmp_path, case, empty_hub):
    cams = {"cam": {"source": "synthetic:w=160&h=120"}}
    model = {"mode": "vadclip", "checkpoint": str(tmp_path / "missing.pt")}
    if case != "checkpoint":
        (tmp_path / "present.pt").write_bytes(b"x")
        model["checkpoint"] = str(tmp_path / "present.pt")
        cams = {
            "cam": {
                "source": str(tmp_path / "gone.mp4") if case == "file camera" else "rtsp//host/x"
            }
        }
    path = write_config(tmp_path, cameras=cams, model=model)
    rc_check, _, err_check, _ = vadmon("config", "check", str(path), env=empty_hub)
    rc_run, out_run, err_run, took = vadmon(
        "run", "--config", str(path), "--no-dashboard", env=empty_hub
    )
    assert rc_check == rc_run == 2
    assert error_lines(err_check) == error_lines(err_run) and len(error_lines(err_run)) == 1
    assert "started" not in err_run + out_run  # no child was spawned
    assert not (tmp_path / "data" / "outbox.db").exists()
    line = error_lines(err_run)[0]
    if case == "checkpoint":
        assert "checkpoint file not found" in line and "import-checkpoint" in line
    elif case == "file camera":
        assert "video file not found" in line and "cameras.cam.source" in line
    else:
        assert "needs '://'" in line
    assert took < 10  # measured ≈0.7 s on an idle machine; generous for a loaded CI


def test_shipped_configs_fail_only_on_weights(tmp_path, empty_hub, vtest_path):
    """Real-camera configs: out of the box, one line, about the weights and how to get them."""
    env = {
        **empty_hub,
        "CAM_PASSWORD": "x",
        "WEBHOOK_SECRET": "whsec_" + "QUJDREVGR0hJSktMTU5PUFFSU1RVVldY",
    }
    for name, kind in [
        ("ucf", "checkpoint"),
        ("xd", "checkpoint"),
        ("rtsp-example", "checkpoint"),
        ("zeroshot", "open_clip"),
    ]:
        rc, _, err, _ = vadmon(
            "config", "check", str(REPO / "configs" / f"{name}.yaml"), cwd=tmp_path, env=env
        )
        lines = error_lines(err)
        assert rc == 2 and len(lines) == 1, (name, err)
        assert kind in lines[0] and "models/README.md" in lines[0], lines[0]


def test_zeroshot_passes_once_the_tag_is_cached(tmp_path, empty_hub, vtest_path):
    """A cache laid out the way huggingface_hub writes it is found, offline, without open_clip."""
    repo = Path(empty_hub["HF_HUB_CACHE"]) / "models--timm--vit_base_patch16_clip_224.openai"
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text("abc123")
    (repo / "snapshots" / "abc123").mkdir(parents=True)
    (repo / "snapshots" / "abc123" / "open_clip_model.safetensors").write_bytes(b"w")
    rc, out, err, _ = vadmon(
        "config", "check", str(REPO / "configs" / "zeroshot.yaml"), env=empty_hub
    )
    assert rc == 0, err
    assert "weights: open_clip cache" in out and "open_clip_model.safetensors" in out
    rc, out, _, _ = vadmon("models", str(REPO / "configs" / "zeroshot.yaml"), env=empty_hub)
    assert rc == 0 and "timm/vit_base_patch16_clip_224.openai" in out and "present" in out


def test_local_clip_file_is_named_as_such(tmp_path, empty_hub):
    path = write_config(
        tmp_path, model={"mode": "zeroshot", "clip_pretrained": str(tmp_path / "w.bin")}
    )
    rc, _, err, _ = vadmon("config", "check", str(path), env=empty_hub)
    assert rc == 2 and "CLIP weights file not found" in err and "model.clip_pretrained" in err


def test_models_lists_local_checkpoints_and_needs(tmp_path, empty_hub):
    models = tmp_path / "models"
    models.mkdir()
    (models / "vadclip-ucf.pt").write_bytes(b"0" * 2_000_000)
    rc, out, _, _ = vadmon("models", "--models-dir", str(models), cwd=REPO, env=empty_hub)
    assert rc == 0
    assert f"checkpoint  {models / 'vadclip-ucf.pt'} (2 MB)" in out
    for name in ("demo", "rtsp-example", "ucf", "xd", "zeroshot"):
        assert f"configs/{name}.yaml:" in out
    assert "MISSING" in out and "import-checkpoint model_xd.pth --preset xd" in out


def test_known_hub_table_matches_open_clip():
    from open_clip.pretrained import HF_SAFE_WEIGHTS_NAME, HF_WEIGHTS_NAME, get_pretrained_cfg

    assert set(weights.HUB_FILES) == {HF_SAFE_WEIGHTS_NAME, HF_WEIGHTS_NAME}
    for (arch, tag), hub in weights.KNOWN_HUB.items():
        assert get_pretrained_cfg(arch, tag)["hf_hub"] == hub
