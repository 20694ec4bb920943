"""The live step reuses complete attention blocks (``PrefixMemo``) and stays exact.

Checked against the memo-free forward on the same weights (fp32, to float rounding) over a
window that grows, jumps to the next block start, repeats, and changes under the memo; and
that the reuse really happens: the local transformer sees only the newest block's rows.
"""

from __future__ import annotations

import pytest
import torch

from vadmon.inference.scores import Entry, VadClipStreamScorer
from vadmon.model import StreamingStep, VadCLIP, load_preset


@pytest.fixture(scope="module")
def model() -> VadCLIP:
    cfg = load_preset("ucf").model_config(
        clip_arch="vadmon-tiny", visual_width=64, visual_length=32
    )
    torch.manual_seed(5)
    return VadCLIP(cfg).eval()


@pytest.fixture()
def rows_seen(model: VadCLIP):
    """Rows of every local-transformer call (a forward hook on the model's own module)."""
    seen: list[int] = []
    handle = model.temporal.register_forward_hook(
        lambda _m, args, _o: seen.append(args[0].shape[1])
    )
    yield seen
    handle.remove()


def _features(n: int, width: int, seed: int = 0) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(n, width, generator=gen).cumsum(0) / n**0.5


def _close(out, ref) -> None:
    torch.testing.assert_close(out.logits1, ref.logits1, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(out.logits2, ref.logits2, atol=1e-4, rtol=1e-5)


def test_memo_steps_match_the_full_forward(model: VadCLIP, rows_seen: list[int]) -> None:
    step = StreamingStep(model)
    feats = _features(48, model.config.visual_width)
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
    feats = _features(20, model.config.visual_width, seed=1)
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
    feats = {cam: _features(40, width, seed=i) for i, cam in enumerate(("a", "b"))}
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
