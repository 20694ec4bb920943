"""Image-encoder backends (``vadmon.encoder``): parity per backend and precision on real frames
and the official fixture models, and the OpenVINO path end to end (conversion, cache hit,
corrupt-cache recovery, fidelity gate with fallback, the measured ``auto`` choice).

Real parts throughout: OpenVINO and NNCF convert and quantise the fixture models' CLIP tower,
frames come from OpenCV's vtest.avi, probabilities from the imported official VadCLIP models.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from vadmon.config.models import ModelConfig
from vadmon.encoder import openvino_backend, probe
from vadmon.encoder.calibration import read_video
from vadmon.encoder.torch_backend import TorchEncoder
from vadmon.errors import VadmonError
from vadmon.inference.build import build_scorer
from vadmon.inference.embedding import SnippetEncoder
from vadmon.model import checkpoint
from vadmon.model.config import load_preset
from vadmon.model.predict import score_features

PRESETS = ("ucf", "xd")


@pytest.fixture(scope="module")
def fixture_ckpts(reference_dir: Path, tmp_path_factory) -> dict[str, Path]:
    """The official compact models (ucf, xd) imported as vadmon checkpoints."""
    out = {}
    for preset in PRESETS:
        root = reference_dir / "official_compact" / preset
        width = json.loads((root / "config.json").read_text())["visual_width"]
        cfg = load_preset(preset).model_config(visual_width=width, visual_head=1)
        path = tmp_path_factory.mktemp("ckpt") / f"{preset}.pt"
        checkpoint.save(checkpoint.import_published(root / "official_state_dict.pt", cfg), path)
        out[preset] = path
    return out


@pytest.fixture(scope="module")
def frames(vtest_path: Path) -> list:
    got = read_video(str(vtest_path), 24)
    assert len(got) == 24
    return got


@pytest.fixture(scope="module")
def ov_cache(tmp_path_factory) -> Path:
    """One cache for the parity cases, so fp32 and bf16 share one conversion."""
    return tmp_path_factory.mktemp("ovcache")


@pytest.fixture()
def cache_home(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    return tmp_path / "xdg" / "vadmon"


def _model_cfg(ckpt: Path, cache: Path, **encoder) -> ModelConfig:
    precision = encoder.pop("precision", "auto")
    enc = {"backend": "openvino", "cache_dir": str(cache), **encoder}
    return ModelConfig(
        mode="vadclip", checkpoint=ckpt, device="cpu", precision=precision, encoder=enc
    )


def _probs(model, emb: torch.Tensor) -> torch.Tensor:
    out = score_features(model, emb.numpy())
    return torch.cat([torch.from_numpy(out["coarse"])[:, None],
                      torch.from_numpy(out["class_probs"])], dim=1)  # fmt: skip


@pytest.mark.parametrize(
    "backend,precision",
    [("torch", "bf16"), ("torch", "int8"), ("openvino", "fp32"), ("openvino", "bf16"),
     ("openvino", "int8")],
)  # fmt: skip
def test_parity_per_backend_and_precision(backend, precision, fixture_ckpts, frames, ov_cache):
    """Embeddings of real frames at cosine ≥ 0.999 to torch fp32 and VadCLIP probabilities
    within 0.01 on both official fixture models."""
    for preset, path in fixture_ckpts.items():
        ckpt = checkpoint.load(path)
        fp32 = ckpt.build("cpu", "fp32")
        prepare = SnippetEncoder(fp32.clipmodel).prepare
        calib, held = prepare(frames[:16]), prepare(frames[16:])
        ref = TorchEncoder(fp32.clipmodel, "fp32").encode(held)
        if backend == "torch":
            enc = TorchEncoder(ckpt.build("cpu", precision).clipmodel)
        else:
            size = int(held.shape[-1])
            enc = openvino_backend.cached(fp32.clipmodel.visual, size, precision, 1, ov_cache,
                                          lambda c=calib: (c, "vtest"))  # fmt: skip
        assert (enc.backend, enc.precision) == (backend, precision)
        got = enc.encode(held)
        assert got.dtype == torch.float32 and got.shape == ref.shape
        cos = float(F.cosine_similarity(got, ref, dim=-1).min())
        assert cos >= 0.999, (preset, cos)
        diff = float((_probs(fp32, got) - _probs(fp32, ref)).abs().max())
        assert diff <= 0.01, (preset, diff)


def test_openvino_conversion_cache_hit_and_corrupt_recovery(
    fixture_ckpts, frames, vtest_path, tmp_path, cache_home, caplog
):
    caplog.set_level(logging.INFO, "vadmon.encoder")
    cfg = _model_cfg(fixture_ckpts["ucf"], tmp_path / "ov", precision="int8",
                     calibration=str(vtest_path), calibration_frames=16)  # fmt: skip
    before = dict(openvino_backend.stats)
    built = build_scorer(cfg, "cpu")
    encoder, runtime = built.encoder, built.runtime
    assert runtime == "cpu/ov-int8" and encoder.image_encoder.backend == "openvino"
    assert openvino_backend.stats["conversions"] == before["conversions"] + 1
    assert openvino_backend.stats["quantisations"] == before["quantisations"] + 1
    (manifest_path,) = (tmp_path / "ov").glob("*/manifest.json")
    manifest = json.loads(manifest_path.read_text())
    assert set(manifest["sha256"]) == {"model.xml", "model.bin"}
    assert manifest["calibration_frames"] == 12  # 16 read: 12 calibrate, 4 held out
    assert manifest["calibration_source"].startswith(vtest_path.name)
    # the snippet encoder runs the OpenVINO tower and matches torch fp32 on real frames
    torch_enc = SnippetEncoder(encoder.clip)
    snippets = [[f] for f in frames[:6]]
    cos = F.cosine_similarity(encoder.encode(snippets), torch_enc.encode(snippets), dim=-1)
    assert float(cos.min()) >= 0.999
    # a second start reads the cache: no conversion, the files untouched
    binary = manifest_path.with_name("model.bin")
    mtime = binary.stat().st_mtime_ns
    mid = dict(openvino_backend.stats)
    built = build_scorer(cfg, "cpu")
    encoder2, runtime2 = built.encoder, built.runtime
    assert runtime2 == "cpu/ov-int8" and encoder2.image_encoder.source == "cache"
    assert openvino_backend.stats["conversions"] == mid["conversions"]
    assert openvino_backend.stats["cache_hits"] == mid["cache_hits"] + 1
    assert binary.stat().st_mtime_ns == mtime
    # a corrupted weights file is detected by its hash, logged and rebuilt
    data = bytearray(binary.read_bytes())
    data[len(data) // 2] ^= 0xFF
    binary.write_bytes(bytes(data))
    caplog.clear()
    built = build_scorer(cfg, "cpu")
    encoder3, runtime3 = built.encoder, built.runtime
    assert runtime3 == "cpu/ov-int8" and encoder3.image_encoder.source == "converted"
    assert openvino_backend.stats["rebuilds"] == mid["rebuilds"] + 1
    assert "model.bin does not match its recorded sha256 (corrupt)" in caplog.text
    emb = encoder3.encode(snippets)
    assert float(F.cosine_similarity(emb, torch_enc.encode(snippets), dim=-1).min()) >= 0.999


@pytest.mark.parametrize("gate", [{"gate_cosine": 1.0}, {"gate_prob": 0.0}])
def test_a_failed_gate_falls_back_to_torch_and_says_why(
    gate, fixture_ckpts, ov_cache, cache_home, caplog
):
    caplog.set_level(logging.INFO, "vadmon.encoder")
    cfg = _model_cfg(fixture_ckpts["ucf"], ov_cache, precision="int8", calibration="builtin",
                     calibration_frames=16, **gate)  # fmt: skip
    built = build_scorer(cfg, "cpu")
    encoder, runtime = built.encoder, built.runtime
    result = encoder.selection.gate
    assert not result.passed and encoder.selection.fallback == result.reason
    assert runtime == "cpu/fp32" and encoder.image_encoder.backend == "torch"
    assert "failed the fidelity gate" in caplog.text and "falling back to torch fp32" in caplog.text
    if "gate_cosine" in gate:
        assert result.cosine_min < 1.0 and "cosine" in result.reason
    else:
        assert result.prob_max_diff > 0.0 and "probabilities moved" in result.reason


def test_calibration_from_the_cameras_and_a_bad_calibration_file(
    fixture_ckpts, vtest_path, tmp_path, ov_cache, cache_home
):
    cfg = _model_cfg(fixture_ckpts["ucf"], ov_cache, precision="int8", calibration="cameras",
                     calibration_frames=8)  # fmt: skip
    encoder = build_scorer(cfg, "cpu", cameras=[str(vtest_path), str(vtest_path)]).encoder
    assert encoder.selection.calibration_source == "cameras: 8 frames from 2 camera(s)"
    bad = _model_cfg(fixture_ckpts["ucf"], ov_cache, precision="int8",
                     calibration=str(tmp_path / "missing.mp4"))  # fmt: skip
    with pytest.raises(VadmonError, match="calibration video"):
        build_scorer(bad, "cpu")


def test_auto_follows_the_measured_matrix_and_caches_it(fixture_ckpts, ov_cache, cache_home):
    cfg = _model_cfg(fixture_ckpts["ucf"], ov_cache, backend="auto", calibration="builtin",
                     calibration_frames=8)  # fmt: skip
    threads = torch.get_num_threads()
    try:
        built = build_scorer(cfg, "cpu")
        encoder, runtime = built.encoder, built.runtime
        path = cache_home / "encoder_probe.json"
        (entry,) = json.loads(path.read_text()).values()
        matrix = probe.Matrix(**entry)
        cells = {n.rsplit("/", 1)[0] for n in matrix.images_per_s}
        assert {"torch/fp32", "torch/int8", "openvino/fp32", "openvino/int8"} <= cells
        expected = probe.choose(matrix, ("torch", "openvino"), probe.PRECISIONS,
                                probe.thread_counts(None))  # fmt: skip
        tag = f"ov-{expected.precision}" if expected.backend == "openvino" else expected.precision
        if not getattr(encoder, "selection", None) or not encoder.selection.fallback:
            assert runtime == f"cpu/{tag}"
        assert torch.get_num_threads() == expected.threads
        # later starts read the cache: an edited matrix is what they follow
        data = json.loads(path.read_text())
        speeds = next(iter(data.values()))["images_per_s"]
        speeds["torch/int8/1"] = 1e9
        path.write_text(json.dumps(data))
        runtime2 = build_scorer(cfg, "cpu").runtime
        assert runtime2 == "cpu/int8" and torch.get_num_threads() == 1
        # a changed key (other CPU or library versions) measures again
        next(iter(data.values()))["key"] = "another machine"
        path.write_text(json.dumps(data))
        build_scorer(cfg, "cpu")
        (again,) = json.loads(path.read_text()).values()
        assert again["key"] != "another machine" and again["images_per_s"]["torch/int8/1"] < 1e9
    finally:
        torch.set_num_threads(threads)
