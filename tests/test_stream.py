"""``StreamingStep`` gives the model's own outputs for live windows, faster.

Checked against ``VadCLIP.forward`` with cached text features on the same weights: fp32 must
match to float rounding (any window length, including lengths that cut an attention window, and
batched cameras); bf16 must stay close in probability.
"""

from __future__ import annotations

import pytest
import torch
from conftest import native_bf16

from vadmon.model import StreamingStep, VadCLIP, load_preset, probabilities
from vadmon.model.clip_factory import best_cpu_precision, best_precision, cpu_has_native_bf16


@pytest.fixture(scope="module")
def model() -> VadCLIP:
    cfg = load_preset("ucf").model_config(
        clip_arch="vadmon-tiny", visual_width=64, visual_length=32
    )
    torch.manual_seed(3)
    return VadCLIP(cfg).eval()


def _window(batch: int, n: int, width: int) -> torch.Tensor:
    gen = torch.Generator().manual_seed(n)
    return torch.randn(batch, n, width, generator=gen).cumsum(1) / n**0.5


@pytest.mark.parametrize(("batch", "n"), [(1, 32), (1, 13), (1, 1), (3, 20)])
def test_fp32_matches_model_forward(model: VadCLIP, batch: int, n: int) -> None:
    text = model.encode_prompts(model.config.class_names)
    window = _window(batch, n, model.config.visual_width)
    with torch.no_grad():
        ref = model(window, torch.full((batch,), n), text_features=text)
    out = StreamingStep(model)(window)
    torch.testing.assert_close(out.logits1, ref.logits1, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(out.logits2, ref.logits2, atol=1e-4, rtol=1e-5)


def test_prompts_encoded_once_from_class_names(model: VadCLIP) -> None:
    names = ["normal", "fighting", "arson"]
    step = StreamingStep(model, names)
    window = _window(1, 16, model.config.visual_width)
    with torch.no_grad():
        ref = model(window, torch.tensor([16]), class_names=names)
    out = step(window[0])  # [n, D] is accepted as one camera
    assert out.logits2.shape == (1, 16, 3)
    torch.testing.assert_close(out.logits2, ref.logits2, atol=1e-4, rtol=1e-5)


def test_bf16_stays_close(model: VadCLIP) -> None:
    text = model.encode_prompts(model.config.class_names)
    window = _window(1, 32, model.config.visual_width)
    with torch.no_grad():
        ref = probabilities(model(window, torch.tensor([32]), text_features=text))
    step = StreamingStep(model, dtype=torch.bfloat16, text_features=text)
    out = probabilities(step(window))
    assert next(step.parts["mlp2"].parameters()).dtype == torch.bfloat16
    assert model.mlp2.c_fc.weight.dtype == torch.float32  # the model itself is untouched
    for key in ("coarse", "fine", "class_probs"):
        assert (out[key] - ref[key]).abs().max() < 0.02, key


def test_precision_choice_follows_cpu_flags() -> None:
    expected = "bf16" if native_bf16() else "fp32"  # from /proc/cpuinfo, read by the test
    assert cpu_has_native_bf16() is native_bf16()
    assert best_cpu_precision() == expected and best_precision("cpu") == expected
    assert cpu_has_native_bf16("processor : 0\nflags : fpu avx512f avx512_bf16\n")
    assert cpu_has_native_bf16("flags : fpu amx_bf16 amx_tile\n")
    assert not cpu_has_native_bf16("flags : fpu avx2 avx512f avx512bw\n")
    assert not cpu_has_native_bf16("")
