"""Scorers built from the model config: zero-shot from a local CLIP weights file, and open
vocabulary (extra class names) in both modes."""

from __future__ import annotations

import numpy as np
import torch

from vadmon.capture.source import SyntheticSource
from vadmon.config.models import ModelConfig
from vadmon.inference.build import build_scorer
from vadmon.model.clip_factory import create_clip


def frames(n: int, red: bool = False) -> list[list[np.ndarray]]:
    src = SyntheticSource(width=320, height=240)
    out = []
    for i in range(n):
        f = src.render(i * 16 + 8)
        if red:
            f[:, :] = (0, 0, 255)
        out.append([f])
    return out


def test_zeroshot_from_a_local_weights_file_with_extra_classes(tmp_path):
    torch.manual_seed(5)
    clip = create_clip("vadmon-tiny")
    for p in clip.parameters():
        p.data.add_(torch.randn_like(p) * 0.01)  # not the seeded default tower
    weights = tmp_path / "tiny.pt"
    torch.save(clip.state_dict(), weights)
    cfg = ModelConfig(
        mode="zeroshot",
        clip_arch="vadmon-tiny",
        clip_pretrained=str(weights),
        class_names=["normal", "fighting"],
        extra_classes=["smoke", "fighting"],
        device="cpu",
        precision="fp32",
    )
    built = build_scorer(cfg, cfg.device)
    scorer, encoder, runtime = built.scorer, built.encoder, built.runtime
    # fp32 on whichever backend the measured probe found faster here (torch or OpenVINO)
    assert runtime in ("cpu/fp32", "cpu/ov-fp32") and scorer.mode == "zeroshot"
    assert scorer.class_names == ["normal", "fighting", "smoke"]
    loaded = scorer.clip.state_dict()
    assert all(torch.equal(loaded[k], v) for k, v in clip.state_dict().items())
    results = scorer.score(["a", "b"], encoder.encode(frames(2)))
    for r in results:
        assert len(r.class_probs) == 3 and abs(sum(r.class_probs) - 1) < 1e-5
        assert abs(r.score - (1 - r.class_probs[0])) < 1e-6


def test_vadclip_open_vocabulary_extra_classes(demo_checkpoint):
    cfg = ModelConfig(
        mode="vadclip",
        checkpoint=demo_checkpoint,
        extra_classes=["smoke"],
        device="cpu",
        lookahead=0,  # causal: each score() returns the snippet just fed
    )
    built = build_scorer(cfg, cfg.device)
    scorer, encoder, runtime = built.scorer, built.encoder, built.runtime
    assert scorer.class_names == ["normal", "explosion", "fighting", "smoke"]
    assert runtime.startswith("cpu/")
    normal = [scorer.score(["cam"], encoder.encode([f]))[0] for f in frames(6)]
    red = [scorer.score(["cam"], encoder.encode([f]))[0] for f in frames(3, red=True)]
    assert all(len(r.class_probs) == 4 for r in normal + red)
    assert max(r.score for r in normal) < 0.5 < min(r.score for r in red)
    # the learned prompt context ranks the trained anomaly class first on red, not the new one
    assert all(np.argmax(r.class_probs) == 1 for r in red)
