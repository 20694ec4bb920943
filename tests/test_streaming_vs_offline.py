"""Streaming (causal sliding window) vs offline (published fixed chunks) on a recorded video.

The two cannot be identical (see docs/RESEARCH.md "Streaming vs offline scores"); this test measures and
prints how close they are on real footage with an inserted anomaly, and holds the agreement to
a level that catches alignment bugs (a shifted window or mis-placed newest snippet drops the
correlation far below it).
"""

from __future__ import annotations

import cv2
import numpy as np

from vadmon.inference.embedding import SnippetEncoder
from vadmon.inference.scores import VadClipStreamScorer
from vadmon.model import load_model
from vadmon.model.predict import score_features


def recorded_embeddings(encoder: SnippetEncoder, vtest, snippets: int = 48) -> np.ndarray:
    cap = cv2.VideoCapture(str(vtest))
    rows = []
    for i in range(snippets):
        frames = []
        for _ in range(16):
            ok, frame = cap.read()
            assert ok
            frames.append(frame)
        mid = frames[8]
        if 20 <= i < 26:  # the anomaly: a red flash lasting six snippets
            mid = (mid * 0.2 + np.array([0, 0, 255]) * 0.8).astype(np.uint8)
        rows.append(encoder.encode([[mid]])[0].numpy())
    return np.stack(rows)


def stream(model, feats: np.ndarray, window: int) -> np.ndarray:
    scorer = VadClipStreamScorer(model, window=window)
    return np.array([scorer.score(["cam"], torch_row(r))[0].score for r in feats])


def report(name: str, offline: np.ndarray, streaming: np.ndarray) -> float:
    corr = float(np.corrcoef(offline, streaming)[0, 1])
    diff = np.abs(offline - streaming)
    print(
        f"{name}: streaming vs offline correlation {corr:.3f}, max |diff| {diff.max():.3f}, "
        f"mean |diff| {diff.mean():.3f}"
    )
    return corr


def test_stream_score_is_the_spec_on_its_block_aligned_window(demo_checkpoint, vtest_path):
    """The alignment, exactly: snippet i's streaming score is the spec's C-Branch output at the
    last row of the unpadded window [start, i], start = block-aligned (i − window + 1)."""
    import spec_reference as spec
    import torch

    model = load_model(demo_checkpoint)
    feats = recorded_embeddings(SnippetEncoder(model.clipmodel), vtest_path, snippets=40)
    window, block = 24, model.config.attn_window
    streaming = stream(model, feats, window)
    rcfg = spec.config_of(model)
    sd = model.state_dict()
    for i in (0, 5, 23, 24, 30, 39):
        start = max(0, -(-(i - window + 1) // block) * block)
        win = torch.from_numpy(feats[start : i + 1])[None]
        _, logits1, _ = spec.forward(sd, model.clipmodel, rcfg, win, [win.shape[1]])
        expected = torch.sigmoid(logits1[0, -1, 0]).item()
        assert abs(streaming[i] - expected) <= 1e-4, (i, start, streaming[i], expected)


def test_streaming_vs_offline_published_model(reference_dir, tmp_path):
    """The official UCF fixture model on its 600-snippet test video (random features)."""
    import subprocess
    import sys

    import torch

    out = tmp_path / "ucf.pt"
    src = reference_dir / "official_compact/ucf/official_state_dict.pt"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "vadmon",
            "import-checkpoint",
            str(src),
            "--preset",
            "ucf",
            "-o",
            str(out),
        ],
        check=True,
        capture_output=True,
        timeout=300,
    )
    model = load_model(out)
    feats = torch.load(reference_dir / "official_compact/ucf/reference.pt", weights_only=True)[
        "test"
    ]["features"].numpy()
    offline = score_features(model, feats)["coarse"]
    corr = report(
        "official UCF fixture model, 600 random snippets", offline, stream(model, feats, 256)
    )
    assert corr > 0.3  # context matters, but the same snippets must still rank alike


def test_streaming_vs_offline_recorded_video(demo_checkpoint, vtest_path):
    model = load_model(demo_checkpoint)
    feats = recorded_embeddings(SnippetEncoder(model.clipmodel), vtest_path)
    offline = score_features(model, feats)["coarse"]
    streaming = stream(model, feats, model.config.visual_length)
    report("demo model, vtest.avi with a red flash", offline, streaming)
    flash = slice(20, 26)
    # causal: nothing before the flash can know about it; the flash itself is caught at once
    assert streaming[flash].min() > 0.9 > streaming[:20].max()
    # offline sees the future (its block and the whole chunk) but still peaks on the flash
    assert offline[flash].min() > offline[:10].max()


def torch_row(row: np.ndarray):
    import torch

    return torch.from_numpy(row)[None]
