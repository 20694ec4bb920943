"""``precision: auto`` is decided by a measured probe on this CPU, cached per machine, logged.

Whatever this machine is (bf16 may be faster or slower than fp32 here), the decision must
follow the recorded measurement, and the cache must be what later starts read.
"""

from __future__ import annotations

import json
import logging

import pytest
import torch
import torch.nn.functional as F

from vadmon.config.models import ModelConfig
from vadmon.errors import VadmonError
from vadmon.inference.build import build_scorer
from vadmon.model import checkpoint, precision
from vadmon.model.clip_factory import create_clip, encode_images, resolve_precision
from vadmon.model.config import load_preset


@pytest.fixture()
def cache_home(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    return tmp_path / "vadmon" / "precision.json"


def _entry(path):
    (entry,) = json.loads(path.read_text()).values()
    return entry


def test_auto_follows_the_measured_probe_and_caches_it(cache_home, caplog):
    caplog.set_level(logging.INFO, "vadmon.model.precision")
    choice = resolve_precision("auto", "cpu", "vadmon-tiny")
    entry = _entry(cache_home)
    assert entry["choice"] == choice and "vadmon-tiny" in entry["key"]
    speed, cos = entry["images_per_s"], entry["cosine_min"]
    assert set(speed) == {"fp32", "bf16", "int8"} and cos["fp32"] == 1.0
    expected = "fp32"
    for name in ("fp32", "bf16", "int8"):
        if cos[name] >= precision.COSINE_GATE and speed[name] >= speed[expected] * 1.1:
            expected = name
    assert choice == expected
    assert f"precision auto → {choice} (probe on" in caplog.text
    # later starts read the cache: an edited entry is what they get, without measuring again
    data = json.loads(cache_home.read_text())
    other = "bf16" if choice != "bf16" else "fp32"
    next(iter(data.values()))["choice"] = other
    cache_home.write_text(json.dumps(data))
    caplog.clear()
    assert resolve_precision("auto", "cpu", "vadmon-tiny") == other
    assert "cached probe" in caplog.text


def test_a_broken_cache_is_measured_again(cache_home):
    cache_home.parent.mkdir(parents=True)
    cache_home.write_text("{not json")
    choice = resolve_precision("auto", "cpu", "vadmon-tiny")
    assert _entry(cache_home)["choice"] == choice


def test_the_cache_is_per_thread_count(cache_home):
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        resolve_precision("auto", "cpu", "vadmon-tiny")
        torch.set_num_threads(2)
        resolve_precision("auto", "cpu", "vadmon-tiny")
    finally:
        torch.set_num_threads(before)
    keys = [e["key"] for e in json.loads(cache_home.read_text()).values()]
    assert len(keys) == 2 and keys[0] != keys[1]


def test_explicit_precisions_are_kept_and_bad_ones_refused(cache_home):
    for name in ("fp32", "bf16", "int8"):
        assert resolve_precision(name, "cpu", "vadmon-tiny") == name
    assert not cache_home.exists()  # nothing measured for an explicit choice
    with pytest.raises(VadmonError, match="unknown precision"):
        resolve_precision("int4", "cpu", "vadmon-tiny")


def test_int8_tower_passes_the_cosine_gate(cache_home):
    fp32 = create_clip("vadmon-tiny", precision="fp32")
    int8 = create_clip("vadmon-tiny", precision="int8")
    assert any("quantized" in type(m).__module__ for m in int8.visual.modules())
    images = precision._probe_images(fp32.visual.image_size[0] if isinstance(
        fp32.visual.image_size, tuple) else fp32.visual.image_size, count=4)  # fmt: skip
    cos = F.cosine_similarity(encode_images(int8, images), encode_images(fp32, images), dim=-1)
    assert float(cos.min()) >= precision.COSINE_GATE


def test_build_scorer_resolves_auto_once_and_reports_it(cache_home, reference_dir, tmp_path):
    root = reference_dir / "official_compact" / "ucf"
    width = json.loads((root / "config.json").read_text())["visual_width"]
    preset = load_preset("ucf").model_config(visual_width=width, visual_head=1)
    ckpt_path = tmp_path / "ucf-compact.pt"
    checkpoint.save(checkpoint.import_published(root / "official_state_dict.pt", preset), ckpt_path)
    cfg = ModelConfig(
        mode="vadclip", checkpoint=ckpt_path, device="cpu", window=64, lookahead=3, max_gap=2,
        encoder={"backend": "torch"},  # the torch precision probe (backend auto: test_encoder_*)
    )  # fmt: skip
    assert cfg.precision == "auto"
    built = build_scorer(cfg, cfg.device)
    scorer, runtime = built.scorer, built.runtime
    (entry,) = json.loads(cache_home.read_text()).values()  # one probe, for the model's CLIP
    assert runtime == f"cpu/{entry['choice']}"
    expected = precision.adapter_dtype(entry["choice"])
    assert scorer.step.model.mlp2.c_fc.weight.dtype == expected
    assert (scorer.window, scorer.lookahead, scorer.max_gap) == (64, 3, 2)  # config reaches it
