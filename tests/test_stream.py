"""``StreamingStep`` gives the model's own outputs for live windows, faster.

Checked against ``VadCLIP.forward`` with cached text features on the same weights: fp32 must
match to float rounding (any window length, including lengths that cut an attention window, and
batched cameras); bf16 must stay close in probability. The block memo (``PrefixMemo``) is
checked the same way over a window that grows, jumps to the next block start, repeats and
changes under the memo, and shown to run: the local transformer sees only the newest block.
"""

from __future__ import annotations

import pytest
import torch
from conftest import native_bf16

from vadmon.inference.scores import Entry, VadClipStreamScorer
from vadmon.model import StreamingStep, VadCLIP, load_preset, probabilities
from vadmon.model.precision import cpu_has_native_bf16


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
    assert step.model.mlp2.c_fc.weight.dtype == torch.bfloat16
    assert step.model.temporal.resblocks[0].ln_1.weight.dtype == torch.float32
    assert step.model.clipmodel is model.clipmodel  # CLIP shared, not copied
    assert model.mlp2.c_fc.weight.dtype == torch.float32  # the model itself is untouched
    for key in ("coarse", "fine", "class_probs"):
        assert (out[key] - ref[key]).abs().max() < 0.02, key


def test_bf16_flags_are_read_from_cpuinfo() -> None:
    assert cpu_has_native_bf16() is native_bf16()  # from /proc/cpuinfo, read by the test
    assert cpu_has_native_bf16("processor : 0\nflags : fpu avx512f avx512_bf16\n")
    assert cpu_has_native_bf16("flags : fpu amx_bf16 amx_tile\n")
    assert not cpu_has_native_bf16("flags : fpu avx2 avx512f avx512bw\n")
    assert not cpu_has_native_bf16("")


@pytest.fixture()
def rows_seen(model: VadCLIP):
    """Rows of every local-transformer call (a forward hook on the model's own module)."""
    seen: list[int] = []
    handle = model.temporal.register_forward_hook(
        lambda _m, args, _o: seen.append(args[0].shape[1])
    )
    yield seen
    handle.remove()


def _close(out, ref) -> None:
    torch.testing.assert_close(out.logits1, ref.logits1, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(out.logits2, ref.logits2, atol=1e-4, rtol=1e-5)


def test_memo_steps_match_the_full_forward(model: VadCLIP, rows_seen: list[int]) -> None:
    step = StreamingStep(model)
    feats = _window(1, 48, model.config.visual_width)[0]
    memo = None
    windows = [(0, n) for n in range(5, 33)] + [(8, 33), (8, 34), (8, 34)]  # grow, jump, repeat
    for start, end in windows:
        window = feats[start:end]
        rows_seen.clear()
        out = step(window, memo)
        ran = rows_seen[0]
        rows_seen.clear()
        _close(out, step(window))
        n = end - start
        if memo is not None and start == 0 and n % 8:  # same start: only the newest block ran
            assert ran == n - n // 8 * 8, (start, end, ran)
        if (start, end) == (8, 33):
            assert ran == n  # the start moved: every row is new
        memo = out.memo
    assert memo is not None and memo.rows == 24


def test_memo_is_checked_not_trusted(model: VadCLIP, rows_seen: list[int]) -> None:
    step = StreamingStep(model)
    feats = _window(1, 20, model.config.visual_width)[0]
    memo = step(feats[:17]).memo
    assert memo is not None and memo.rows == 16
    changed = feats[:18].clone()
    changed[3] += 0.5  # a row under the memo differs (another camera, a new segment)
    rows_seen.clear()
    out = step(changed, memo)
    assert rows_seen == [18]
    _close(out, step(changed))


def test_scorer_batches_memos_and_scores_as_alone(model: VadCLIP, rows_seen: list[int]) -> None:
    width = model.config.visual_width
    feats = {cam: _window(1, 40 + i, width)[0, :40] for i, cam in enumerate(("a", "b"))}
    together = VadClipStreamScorer(model)
    alone = {cam: VadClipStreamScorer(model) for cam in feats}
    for t in range(40):
        rows_seen.clear()
        got = together.feed([Entry(cam, t, f[t]) for cam, f in feats.items()])
        if t % 8 and t > 8:  # equal lengths, memos reuse equal rows: one batched call
            assert rows_seen == [t % 8 + 1], (t, rows_seen)
        for s in got:
            ref = alone[s.camera].feed([Entry(s.camera, t, feats[s.camera][t])])[0]
            assert (s.camera, s.index) == (ref.camera, ref.index)
            assert abs(s.score - ref.score) < 1e-5
            assert (
                max(abs(p - q) for p, q in zip(s.class_probs, ref.class_probs, strict=True)) < 1e-5
            )
