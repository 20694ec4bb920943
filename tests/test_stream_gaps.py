"""Streaming = the spec on the same sequence, with gaps and with lookahead.

The model is the official compact UCF fixture (the published code's weights, width 16). The
reference is ``spec_reference`` (an independent transcription of VADCLIP_SPEC.md) run on the
sequence the offline protocol would see, built here from the gap rule in docs/RESEARCH.md "Gaps": a gap
of at most ``max_gap`` missing snippets holds the last embedding; a longer gap, or an index
going backwards, starts a new segment whose attention-block grid begins at its first snippet.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import spec_reference as spec
import torch

from vadmon.errors import VadmonError
from vadmon.inference.scores import Entry, VadClipStreamScorer
from vadmon.model.checkpoint import import_published
from vadmon.model.config import load_preset

WINDOW, MAX_GAP = 24, 3


@pytest.fixture(scope="module")
def fixture_model(reference_dir):
    root = reference_dir / "official_compact" / "ucf"
    cfg = json.loads((root / "config.json").read_text())
    preset = load_preset("ucf").model_config(
        visual_width=cfg["visual_width"], visual_head=cfg["visual_head"]
    )
    model = import_published(root / "official_state_dict.pt", preset).build()
    feats = torch.load(root / "reference.pt", weights_only=True)["test"]["features"]
    return model, feats.numpy()


def offline_segments(indices: list[int], feats: np.ndarray, max_gap: int):
    """The offline view of a received sequence: (index → feature, received indices) per
    segment, short gaps filled with the last feature."""
    segments: list[tuple[dict[int, np.ndarray], list[int]]] = []
    prev = None
    for i in indices:
        if prev is None or i <= prev or i - prev - 1 > max_gap:
            segments.append(({}, []))
        seg, received = segments[-1]
        for missing in range(prev + 1 if received else i, i):
            seg[missing] = seg[prev]
        seg[i] = feats[i]
        received.append(i)
        prev = i
    return segments


def spec_score(model, segment: dict[int, np.ndarray], t: int, end: int, window: int) -> float:
    """C-Branch probability of snippet t in the spec's window ending at ``end``."""
    origin = min(segment)
    block = model.config.attn_window
    start = max(0, -(-(end - window + 1 - origin) // block) * block) + origin
    rows = np.stack([segment[k] for k in range(start, end + 1)])
    _, logits1, _ = spec.forward(
        model.state_dict(), model.clipmodel, spec.config_of(model), torch.from_numpy(rows)[None],
        [len(rows)],
    )  # fmt: skip
    return torch.sigmoid(logits1[0, t - start, 0]).item()


def feed(scorer, indices, feats, times=None):
    out = []
    for n, i in enumerate(indices):
        t0, t1 = times[n] if times else (None, None)
        out += scorer.feed([Entry("cam", i, torch.from_numpy(feats[i]), t0, t1)])
    return out


# received: a short gap (10, 11 missing), a long one (21..25), then a capture restart (3..)
RECEIVED = [*range(0, 10), *range(12, 21), *range(26, 36), *range(3, 9)]


def test_streaming_with_gaps_is_the_spec(fixture_model):
    model, feats = fixture_model
    scorer = VadClipStreamScorer(model, window=WINDOW, max_gap=MAX_GAP)
    scored = feed(scorer, RECEIVED, feats)
    assert [s.index for s in scored] == RECEIVED  # every received snippet once, filled never
    segments = offline_segments(RECEIVED, feats, MAX_GAP)
    assert [len(rec) for _, rec in segments] == [19, 10, 6]
    owner = [seg for seg, rec in segments for _ in rec]
    for s, seg in zip(scored, owner, strict=True):
        expected = spec_score(model, seg, s.index, s.index, WINDOW)
        assert abs(s.score - expected) <= 1e-4, (s.index, s.score, expected)
    assert scorer.gap_counters("cam") == {"filled": 2, "restarts": 2}


def test_gap_fill_matters(fixture_model):
    """The check above can fail: closing the short gap instead of filling it changes scores."""
    model, feats = fixture_model
    scorer = VadClipStreamScorer(model, window=WINDOW, max_gap=MAX_GAP)
    scored = {s.index: s.score for s in feed(scorer, RECEIVED[:19], feats)}
    closed = {i: feats[i] for i in RECEIVED[:19]}
    closed = {k: closed[i] for k, i in enumerate(sorted(closed))}  # gap removed: renumbered
    naive = spec_score(model, closed, 17, 17, WINDOW)  # snippet 19 sits at row 17 when closed
    assert abs(scored[19] - naive) > 1e-3


def test_max_gap_decides_fill_or_new_window(fixture_model):
    model, feats = fixture_model
    for max_gap, expected in ((1, {"filled": 0, "restarts": 1}), (2, {"filled": 2, "restarts": 0})):
        scorer = VadClipStreamScorer(model, window=WINDOW, max_gap=max_gap)
        feed(scorer, [0, 1, 2, 5, 6], feats)
        assert scorer.gap_counters("cam") == expected, max_gap


def test_an_outage_is_a_gap_in_time(fixture_model):
    """Capture keeps indices consecutive across a reconnect: the silence itself breaks the
    window when more than max_gap snippet durations fit in it."""
    model, feats = fixture_model
    dur = 0.64
    times = [(i * dur, i * dur + dur - 0.04) for i in range(4)]
    times += [(t0 + 10.0, t1 + 10.0) for t0, t1 in [(4 * dur, 5 * dur - 0.04)]]
    scorer = VadClipStreamScorer(model, window=WINDOW, max_gap=MAX_GAP)
    feed(scorer, [0, 1, 2, 3, 4], feats, times)
    assert scorer.gap_counters("cam") == {"filled": 0, "restarts": 1}
    assert len(scorer._cams["cam"].window) == 1  # the restart kept only the newest snippet


@pytest.mark.parametrize("lookahead", [1, 3])
def test_lookahead_is_the_spec_window_ending_at_t_plus_d(fixture_model, lookahead):
    model, feats = fixture_model
    scorer = VadClipStreamScorer(model, window=WINDOW, max_gap=MAX_GAP, lookahead=lookahead)
    received = [*range(0, 14), *range(15, 34)]  # one filled gap inside
    scored = feed(scorer, received, feats)
    assert [s.index for s in scored] == [i for i in received if i + lookahead <= received[-1]]
    ((segment, _),) = offline_segments(received, feats, MAX_GAP)
    for s in scored:
        end = min(i for i in received if i >= s.index + lookahead)
        assert s.lookahead == end - s.index
        if s.index % 4 == 0 or end != s.index + lookahead:
            expected = spec_score(model, segment, s.index, end, WINDOW)
            assert abs(s.score - expected) <= 1e-4, (s.index, end)
    rest = scorer.flush("cam")
    assert [s.index for s in rest] == received[len(scored) :]
    assert [s.lookahead for s in rest] == [received[-1] - s.index for s in rest]


def test_lookahead_is_capped_to_what_the_window_holds(fixture_model, caplog):
    model, feats = fixture_model
    fits = WINDOW - model.config.attn_window
    scorer = VadClipStreamScorer(model, window=WINDOW, lookahead=fits + 5)
    assert scorer.lookahead == fits and f"using {fits}" in caplog.text
    scored = feed(scorer, list(range(fits + 2)), feats)
    assert [(s.index, s.lookahead) for s in scored] == [(0, fits), (1, fits)]
    with pytest.raises(VadmonError, match="lookahead"):
        VadClipStreamScorer(model, window=WINDOW, lookahead=-1)


def test_a_gap_never_pushes_a_waiting_snippet_out_unscored(fixture_model):
    """Window 16 (blocks of 8), lookahead 8, a filled gap of 4: snippets 6 and 7 would leave
    the window before 6 + 8 arrives, so they are scored from the last window holding them."""
    model, feats = fixture_model
    scorer = VadClipStreamScorer(model, window=16, lookahead=8, max_gap=4)
    received = [*range(0, 14), *range(18, 30)]
    scored = feed(scorer, received, feats) + scorer.flush("cam")
    assert sorted(s.index for s in scored) == received  # each once, none lost
    by_index = {s.index: s for s in scored}
    assert [by_index[i].lookahead for i in (5, 6, 7, 8)] == [8, 7, 6, 10]
    ((segment, _),) = offline_segments(received, feats, 4)
    for t, end in ((6, 13), (7, 13), (8, 18)):
        expected = spec_score(model, segment, t, end, 16)
        assert abs(by_index[t].score - expected) <= 1e-4, t
