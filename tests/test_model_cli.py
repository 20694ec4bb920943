"""`vadmon import-checkpoint` and `vadmon score` as users run them, including bad inputs."""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from vadmon.errors import VadmonError
from vadmon.model import checkpoint
from vadmon.model.clip_factory import create_clip


def vadmon(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "vadmon", *args],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )


@pytest.fixture(scope="module")
def ucf_ckpt(reference_dir: Path, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("ckpt") / "vadclip-ucf.pt"
    src = reference_dir / "official_compact/ucf/official_state_dict.pt"
    proc = vadmon("import-checkpoint", str(src), "--preset", "ucf", "-o", str(out))
    assert proc.returncode == 0, proc.stderr
    return out


def assert_one_line_error(proc: subprocess.CompletedProcess, *needles: str) -> None:
    assert proc.returncode == 2, (proc.returncode, proc.stderr)
    lines = [ln for ln in proc.stderr.strip().splitlines() if ln]
    assert len(lines) == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    for n in needles:
        assert n in lines[0], lines[0]


def test_score_writes_published_test_protocol_arrays(ucf_ckpt, reference_dir, tmp_path):
    ref = torch.load(reference_dir / "official_compact/ucf/reference.pt", weights_only=True)["test"]
    feats = tmp_path / "video.npy"
    np.save(feats, ref["features"].numpy())
    out = tmp_path / "scores.npz"
    proc = vadmon("score", str(ucf_ckpt), str(feats), "-o", str(out))
    assert proc.returncode == 0, proc.stderr
    got = np.load(out)
    assert got["coarse"].shape == (600,) and got["class_probs"].shape == (600, 14)
    assert np.abs(got["coarse"] - ref["prob_coarse"].numpy()).max() <= 1e-4
    assert np.abs(got["fine"] - ref["prob_fine"].numpy()).max() <= 1e-4
    assert np.abs(got["class_probs"] - ref["class_probs"].numpy()).max() <= 1e-4
    assert list(got["class_names"])[0] == "normal"


def test_vadmon_checkpoint_loads_weights_only(ucf_ckpt):
    obj = torch.load(ucf_ckpt, weights_only=True)
    assert obj["format"] == "vadmon-checkpoint"
    assert obj["config"]["class_names"][3] == "arson"
    assert any(k.startswith("clipmodel.visual.") for k in obj["state_dict"])


def test_truncated_checkpoint(ucf_ckpt, reference_dir, tmp_path):
    bad = tmp_path / "truncated.pth"
    bad.write_bytes(
        (reference_dir / "official_compact/ucf/official_state_dict.pt").read_bytes()[:100_000]
    )
    proc = vadmon("import-checkpoint", str(bad), "--preset", "ucf", "-o", str(tmp_path / "o.pt"))
    assert_one_line_error(proc, "cannot read checkpoint", str(bad))
    assert not (tmp_path / "o.pt").exists()
    truncated_own = tmp_path / "own.pt"
    truncated_own.write_bytes(ucf_ckpt.read_bytes()[:50_000])
    np.save(tmp_path / "f.npy", np.zeros((20, 16), np.float32))
    proc = vadmon(
        "score", str(truncated_own), str(tmp_path / "f.npy"), "-o", str(tmp_path / "s.npz")
    )
    assert_one_line_error(proc, "cannot read checkpoint")


def test_checkpoint_of_another_model(reference_dir, tmp_path):
    clip_only = tmp_path / "clip.pt"
    torch.save(create_clip("vadmon-tiny").state_dict(), clip_only)
    proc = vadmon(
        "import-checkpoint", str(clip_only), "--preset", "ucf", "-o", str(tmp_path / "o.pt")
    )
    assert_one_line_error(proc, "missing key 'frame_position_embeddings.weight'")
    xd = reference_dir / "official_compact/xd/official_state_dict.pt"
    proc = vadmon("import-checkpoint", str(xd), "--preset", "ucf", "-o", str(tmp_path / "o.pt"))
    assert_one_line_error(proc, "visual_layers=1", "preset expects 2")
    sd = torch.load(
        reference_dir / "official_compact/ucf/official_state_dict.pt", weights_only=True
    )
    sd["gc2.weight"] = torch.zeros(16, 16)
    wrong = tmp_path / "wrongdims.pth"
    torch.save(sd, wrong)
    proc = vadmon("import-checkpoint", str(wrong), "--preset", "ucf", "-o", str(tmp_path / "o.pt"))
    assert_one_line_error(proc, "'gc2.weight'", "(16, 16)")
    pickled = tmp_path / "code.pth"
    torch.save({"x": argparse.Namespace(a=1)}, pickled)
    proc = vadmon(
        "import-checkpoint", str(pickled), "--preset", "ucf", "-o", str(tmp_path / "o.pt")
    )
    assert_one_line_error(proc, "cannot read checkpoint")
    assert not (tmp_path / "o.pt").exists()


def test_mismatched_class_count(reference_dir, tmp_path):
    src = reference_dir / "official_compact/ucf/official_state_dict.pt"
    proc = vadmon(
        "import-checkpoint",
        str(src),
        "--preset",
        "ucf",
        "-o",
        str(tmp_path / "o.pt"),
        "--class-names",
        "normal,fire",
    )
    assert_one_line_error(proc, "2 classes", "has 14")


def test_feature_file_of_wrong_shape(ucf_ckpt, tmp_path):
    np.save(tmp_path / "wide.npy", np.zeros((30, 512), np.float32))
    proc = vadmon("score", str(ucf_ckpt), str(tmp_path / "wide.npy"), "-o", str(tmp_path / "s.npz"))
    assert_one_line_error(proc, "(30, 512)", "[T, 16]")
    (tmp_path / "junk.npy").write_bytes(b"not numpy at all")
    proc = vadmon("score", str(ucf_ckpt), str(tmp_path / "junk.npy"), "-o", str(tmp_path / "s.npz"))
    assert_one_line_error(proc, "cannot read feature file")
    proc = vadmon(
        "score", str(ucf_ckpt), str(tmp_path / "missing.npy"), "-o", str(tmp_path / "s.npz")
    )
    assert_one_line_error(proc, "not found")
    assert not (tmp_path / "s.npz").exists()


def test_published_checkpoint_passed_to_score_says_how_to_convert(reference_dir, tmp_path):
    np.save(tmp_path / "f.npy", np.zeros((20, 16), np.float32))
    src = reference_dir / "official_compact/ucf/official_state_dict.pt"
    proc = vadmon("score", str(src), str(tmp_path / "f.npy"), "-o", str(tmp_path / "s.npz"))
    assert_one_line_error(proc, "not a vadmon checkpoint", "import-checkpoint")


def test_clip_factory_errors(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(VadmonError, match="unknown CLIP architecture"):
        create_clip("ViT-Nope-1", "openai")
    with pytest.raises(VadmonError, match="not available") as exc:
        create_clip("ViT-B-16", "openai")
    assert "import-checkpoint" in exc.value.fix and "local weights file" in exc.value.fix
    # options that exist where the user meets this: the config key for run, flags for research
    assert "model.clip_pretrained:" in exc.value.fix and "--clip-pretrained" in exc.value.fix
    with pytest.raises(VadmonError, match="not found"):
        create_clip("ViT-B-16", "/nonexistent/weights.bin")


def test_bf16_image_tower_is_close_to_fp32():
    torch.manual_seed(0)
    fp32 = create_clip("vadmon-tiny")
    bf16 = create_clip("vadmon-tiny")
    bf16.load_state_dict(fp32.state_dict())
    from vadmon.model.clip_factory import encode_images, set_image_precision

    set_image_precision(bf16, "bf16")
    images = torch.randn(4, 3, 32, 32)
    a, b = encode_images(fp32, images), encode_images(bf16, images)
    assert b.dtype == torch.float32
    cos = torch.nn.functional.cosine_similarity(a, b, dim=-1)
    assert cos.min() > 0.99, cos


def test_checkpoint_save_is_atomic_and_roundtrips(ucf_ckpt, tmp_path):
    ck = checkpoint.load(ucf_ckpt)
    target = tmp_path / "copy.pt"
    checkpoint.save(ck, target)
    again = checkpoint.load(target)
    assert again.config == ck.config
    assert all(torch.equal(again.state_dict[k], v) for k, v in ck.state_dict.items())
    assert [p.name for p in tmp_path.iterdir()] == ["copy.pt"]
