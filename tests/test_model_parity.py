"""The model reproduces the published VadCLIP code (fixtures) and the spec on other sizes.

The compact fixtures (width 16, in ``tests/data``) always run; the full-width ones (width 64,
``../shared/reference/official``) run when present and are skipped with a reason otherwise.
"""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import spec_reference as spec
import torch
from conftest import official_preset_dir

from vadmon.model import checkpoint, losses, sequence
from vadmon.model.clip_factory import create_clip
from vadmon.model.config import VadClipConfig, load_preset
from vadmon.model.predict import score_features
from vadmon.model.vadclip import VadCLIP

FIXTURES = [("ucf", "compact"), ("xd", "compact"), ("ucf", "full"), ("xd", "full")]


def fixture_dir(reference_dir: Path, preset: str, size: str) -> Path:
    if size == "compact":
        return reference_dir / "official_compact" / preset
    return official_preset_dir(preset)


@pytest.fixture(scope="module", params=FIXTURES, ids=["-".join(f) for f in FIXTURES])
def imported(request, reference_dir: Path, tmp_path_factory):
    """Import the official checkpoint through the CLI, then load vadmon's checkpoint."""
    preset, size = request.param
    base = fixture_dir(reference_dir, preset, size)
    src = base / "official_state_dict.pt"
    out = tmp_path_factory.mktemp(preset) / f"vadclip-{preset}.pt"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "vadmon",
            "import-checkpoint",
            str(src),
            "--preset",
            preset,
            "-o",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    ref = torch.load(base / "reference.pt", weights_only=True)
    cfg = json.loads((base / "config.json").read_text())
    model = checkpoint.load_model(out)
    return preset, model, ref, cfg


def test_import_is_loadable_weights_only(imported):
    _, model, _, cfg = imported
    assert model.config.class_names == cfg["prompt_text"]
    assert model.config.attn_window == cfg["attn_window"]
    assert model.config.visual_layers == cfg["visual_layers"]


def test_forward_matches_official(imported):
    preset, model, ref, _ = imported
    b = ref["batch"]
    with torch.no_grad():
        out = model(b["visual"], b["lengths"])
    errs = {
        k: (getattr(out, k) - b[k]).abs().max().item()
        for k in ("text_features", "logits1", "logits2")
    }
    print(preset, "max abs error", errs)
    assert all(e <= 1e-4 for e in errs.values()), errs


def test_losses_match_official(imported):
    preset, model, ref, cfg = imported
    b = ref["batch"]
    labels = losses.multi_hot(b["labels"], cfg["label_map"], cfg["prompt_text"])
    assert torch.equal(labels, b["label_vectors"])
    weight = load_preset(preset).train["text_loss_weight"]
    with torch.no_grad():
        out = model(b["visual"], b["lengths"])
        terms = losses.total_loss(
            out.logits1, out.logits2, out.text_features, labels, b["lengths"], weight
        )
    assert abs(terms["bce"].item() - b["loss_bce"].item()) <= 1e-5
    assert abs(terms["align"].item() - b["loss_mil_align"].item()) <= 1e-5
    assert abs(terms["text_sum"].item() - b["loss_text_sum"].item()) <= 1e-5
    expected_text = b["loss_text_sum"].item() / (len(cfg["prompt_text"]) - 1) * weight
    assert abs(terms["text"].item() - expected_text) <= 1e-7


def test_test_split_matches_official(imported):
    _, model, ref, _ = imported
    t = ref["test"]
    result = score_features(model, t["features"].numpy())
    assert np.abs(result["coarse"] - t["prob_coarse"].numpy()).max() <= 1e-4
    assert np.abs(result["fine"] - t["prob_fine"].numpy()).max() <= 1e-4
    assert np.abs(result["class_probs"] - t["class_probs"].numpy()).max() <= 1e-4


def test_training_resample_matches_official(imported):
    _, _, ref, _ = imported
    r = ref["resample"]
    out, n = sequence.uniform_resample(r["features"].numpy(), 256)
    assert n == r["length"]
    assert np.abs(out - r["resampled"].numpy()).max() <= 1e-6


def test_spec_reference_matches_official(imported):
    """The test-side transcription is itself right: it reproduces the official outputs."""
    preset, model, ref, cfg = imported
    sd = model.state_dict()
    b = ref["batch"]
    rcfg = {
        "heads": 1,
        "layers": cfg["visual_layers"],
        "window": cfg["attn_window"],
        "class_names": cfg["prompt_text"],
        "prefix": 10,
        "postfix": 10,
    }
    visual, lengths = b["visual"][:2], b["lengths"][:2].tolist()
    t_c, l1, l2 = spec.forward(sd, model.clipmodel, rcfg, visual, lengths)
    assert (t_c - b["text_features"]).abs().max() <= 1e-4
    assert (l1 - b["logits1"][:2]).abs().max() <= 1e-4
    assert (l2 - b["logits2"][:2]).abs().max() <= 1e-4


def _perturb(model: torch.nn.Module, seed: int) -> None:
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn(p.shape, generator=g) * 0.05)


@pytest.mark.parametrize(
    "shape",
    [
        dict(
            L=48,
            heads=2,
            layers=3,
            window=12,
            prefix=4,
            postfix=6,
            names=["normal", "fire alarm", "car crash"],
        ),
        dict(
            L=40,
            heads=4,
            layers=1,
            window=16,
            prefix=8,
            postfix=3,
            names=["quiet", "theft", "riot", "smoke"],
        ),
    ],
)
def test_other_sizes_match_spec(shape):
    """A differently sized model (heads, layers, length, partial windows, prompts) follows the spec."""
    torch.manual_seed(7)
    clip_cfg = {
        "embed_dim": 96,
        "quick_gelu": True,
        "vision_cfg": {"image_size": 32, "layers": 1, "width": 64, "patch_size": 16},
        "text_cfg": {
            "context_length": 77,
            "vocab_size": 49408,
            "width": 80,
            "heads": 2,
            "layers": 2,
        },
    }
    cfg = VadClipConfig(
        class_names=shape["names"],
        visual_length=shape["L"],
        visual_width=96,
        visual_head=shape["heads"],
        visual_layers=shape["layers"],
        attn_window=shape["window"],
        prompt_prefix=shape["prefix"],
        prompt_postfix=shape["postfix"],
        clip_model_cfg=clip_cfg,
    )
    model = VadCLIP(cfg, create_clip(model_cfg=clip_cfg)).eval()
    _perturb(model, 3)
    visual = torch.randn(3, shape["L"], 96)
    lengths = [shape["L"], shape["L"] - 17, 9]
    for n, valid in enumerate(lengths):
        visual[n, valid:] = 0
    rcfg = {
        "heads": shape["heads"],
        "layers": shape["layers"],
        "window": shape["window"],
        "class_names": shape["names"],
        "prefix": shape["prefix"],
        "postfix": shape["postfix"],
    }
    sd = model.state_dict()
    t_c, l1, l2 = spec.forward(sd, model.clipmodel, rcfg, visual, lengths)
    with torch.no_grad():
        out = model(visual, torch.tensor(lengths))
    assert (out.text_features - t_c).abs().max() <= 1e-4
    assert (out.logits1 - l1).abs().max() <= 1e-4
    assert (out.logits2 - l2).abs().max() <= 1e-4
    labels = torch.zeros(3, len(shape["names"]))
    labels[0, 0] = 1
    labels[1, 1] = labels[1, 2] = 1
    labels[2, -1] = 1
    terms = losses.total_loss(
        out.logits1, out.logits2, out.text_features, labels, torch.tensor(lengths), 0.1
    )
    bce, align, text = spec.losses(l1, l2, t_c, labels, lengths)
    assert abs(terms["bce"].item() - bce) <= 1e-5
    assert abs(terms["align"].item() - align) <= 1e-5
    assert abs(terms["text_sum"].item() - text) <= 1e-5
    feats = np.random.default_rng(0).normal(size=(333, 96)).astype(np.float32)
    assert (
        np.abs(
            sequence.uniform_resample(feats, shape["L"])[0] - spec.resample(feats, shape["L"])
        ).max()
        <= 1e-6
    )


def test_split_chunks_exact_multiple_gets_empty_tail():
    chunks, lengths = sequence.split_chunks(np.ones((512, 4), np.float32), 256)
    assert chunks.shape == (3, 256, 4)
    assert lengths.tolist() == [256, 256, 0]
    chunks, lengths = sequence.split_chunks(np.ones((10, 4), np.float32), 256)
    assert lengths.tolist() == [10] and chunks[0, 10:].abs().sum() == 0


def test_text_features_are_constant_and_cached(imported):
    from vadmon.model.prompts import PromptCache

    _, model, ref, _ = imported
    model = copy.deepcopy(model)
    cache = PromptCache()
    a = cache.get(model, model.config.class_names)
    assert cache.get(model, model.config.class_names) is a
    assert (a - ref["batch"]["text_features"]).abs().max() <= 1e-4
    with torch.no_grad():
        model.text_prompt_embeddings.weight.add_(
            torch.randn_like(model.text_prompt_embeddings.weight)
        )
    b = cache.get(model, model.config.class_names)
    assert b is not a and (b - a).abs().max() > 1e-3
