"""``lookahead``: what waiting d snippets buys in agreement with offline VadCLIP, and costs.

Offline (the paper's protocol) scores whole 256-snippet chunks and so sees the future; the live
monitor is causal. With ``model.lookahead = d`` a snippet is scored once d more have arrived,
from the window ending there. For d = 0, 1, 2, 4, 8 this measures, against offline scores of
the same sequence: Pearson correlation, max |Δ| of the C-Branch probability, and event-level
agreement after the monitor's own alert logic (default ``alerts`` settings, both score streams
through ``CameraEvents``): F1 of events matched by overlap, and the share of snippets whose
in-event state agrees. Added latency is d × snippet duration (16 frames at 25 fps = 0.64 s): it
follows from the definition, it is not a timing.

Models: the official fixture models (the published code's weights on random features: UCF and
XD, 600 snippets each; ``--quick``: the compact width-16 ones) and the demo model on a rendered
scene with red flashes. A second group measures the int8 image tower's effect on the streaming
scores (same frames, fp32 vs int8 CLIP tower, max |Δ|).
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from vadmon.bench.core import BenchOptions, BenchResult, Row, setup_threads
from vadmon.bench.events import event_agreement
from vadmon.inference.scores import Entry, VadClipStreamScorer
from vadmon.model.checkpoint import import_published
from vadmon.model.config import load_preset
from vadmon.model.predict import score_features
from vadmon.model.vadclip import VadCLIP

LOOKAHEADS = (0, 1, 2, 4, 8)
SNIPPET_S = 16 / 25.0
REPO = Path(__file__).resolve().parents[2]


@dataclass
class Case:
    name: str
    model: VadCLIP
    features: np.ndarray  # [T, D]
    window: int


def fixture_dir(compact: bool) -> Path | None:
    """``$VADMON_REFERENCE_DIR``, ``tests/data/reference`` (vendored compact fixtures) or
    ``../shared/reference`` (the full-width ones), whichever holds the wanted kind."""
    kind = "official_compact" if compact else "official"
    for cand in (os.environ.get("VADMON_REFERENCE_DIR"), REPO / "tests" / "data" / "reference",
                 REPO.parent / "shared" / "reference"):  # fmt: skip
        if cand and (Path(cand) / kind / "ucf").is_dir():
            return Path(cand) / kind
    return None


def fixture_case(folder: Path, preset: str) -> Case:
    folder = folder / preset
    cfg = json.loads((folder / "config.json").read_text())
    model_cfg = load_preset(preset).model_config(
        visual_width=cfg["visual_width"], visual_head=cfg["visual_head"]
    )
    model = import_published(folder / "official_state_dict.pt", model_cfg).build()
    feats = torch.load(folder / "reference.pt", weights_only=True)["test"]["features"].numpy()
    kind = folder.parent.name.replace("official_", "")
    return Case(f"{kind} {preset.upper()}", model, feats, model.config.visual_length)


def demo_frames(count: int) -> tuple[list[np.ndarray], list[tuple[int, int]]]:
    """The synthetic camera, one middle frame per snippet, with three red flashes."""
    from vadmon.capture.source import SyntheticSource

    src = SyntheticSource(width=320, height=240, fps=10.0)
    flashes = [
        (count // 5, count // 5 + 6),
        (count // 2, count // 2 + 4),
        (4 * count // 5, 4 * count // 5 + 10),
    ]
    frames = []
    for k in range(count):
        frame = src.render(k * 16 + 8)
        if any(a <= k < b for a, b in flashes):
            frame = (frame * 0.2 + np.array([0, 0, 255]) * 0.8).astype(np.uint8)
        frames.append(frame)
    return frames, flashes


def demo_case(count: int) -> Case:
    from vadmon.demo import build_demo_checkpoint
    from vadmon.inference.embedding import SnippetEncoder
    from vadmon.model.checkpoint import load_model

    with tempfile.TemporaryDirectory(prefix="vadmon-bench-") as tmp:
        model = load_model(build_demo_checkpoint(Path(tmp) / "demo.pt"))
    frames, _ = demo_frames(count)
    feats = SnippetEncoder(model.clipmodel).encode([[f] for f in frames]).numpy()
    return Case("demo (tiny, rendered flashes)", model, feats, model.config.visual_length)


def stream_scores(model: VadCLIP, feats: np.ndarray, window: int, lookahead: int) -> np.ndarray:
    scorer = VadClipStreamScorer(model, window=window, lookahead=lookahead)
    out = {}
    for i, row in enumerate(feats):
        for s in scorer.feed([Entry("cam", i, torch.from_numpy(row))]):
            out[s.index] = s.score
    for s in scorer.flush("cam"):
        out[s.index] = s.score
    return np.array([out[i] for i in range(len(feats))])


def lookahead_rows(case: Case) -> list[Row]:
    offline = score_features(case.model, case.features)["coarse"]
    rows = []
    base = None
    for d in LOOKAHEADS:
        live = stream_scores(case.model, case.features, case.window, d)
        corr = float(np.corrcoef(offline, live)[0, 1])
        base = corr if base is None else base
        acc = {
            "corr": round(corr, 4),
            "max_abs": round(float(np.abs(offline - live).max()), 4),
            "mean_abs": round(float(np.abs(offline - live).mean()), 4),
            **event_agreement(offline, live, SNIPPET_S),
            "added_latency_s": round(d * SNIPPET_S, 2),
        }
        rows.append(Row(f"lookahead {d}", case.name, round(corr, 4), "corr with offline",
                        round(corr / base, 3) if base else None, "lookahead 0",
                        params={"lookahead": d, "snippets": len(offline), "window": case.window},
                        accuracy=acc))  # fmt: skip
    return rows


def int8_row(case: Case, count: int) -> Row:
    """Same frames through the checkpoint's CLIP tower in fp32 and int8: score difference."""
    from vadmon.inference.embedding import SnippetEncoder
    from vadmon.model.precision import apply_to_tower

    frames = [[f] for f in demo_frames(count)[0]]
    fp32 = SnippetEncoder(case.model.clipmodel).encode(frames).numpy()
    clip = case.model.clipmodel
    original = clip.visual
    try:
        import copy

        clip.visual = copy.deepcopy(original)
        apply_to_tower(clip, "int8")
        int8 = SnippetEncoder(clip).encode(frames).numpy()
    finally:
        clip.visual = original
    a = stream_scores(case.model, fp32, case.window, 0)
    b = stream_scores(case.model, int8, case.window, 0)
    cos = (fp32 * int8).sum(1) / (np.linalg.norm(fp32, axis=1) * np.linalg.norm(int8, axis=1))
    acc = {"max_abs": round(float(np.abs(a - b).max()), 5), "cos_min": round(float(cos.min()), 5)}
    return Row("int8 image tower", case.name, acc["max_abs"], "max |Δ score|", None, "fp32 tower",
               params={"snippets": count}, accuracy=acc)  # fmt: skip


def run(opts: BenchOptions) -> BenchResult:
    setup_threads(opts.threads)
    root = fixture_dir(compact=opts.quick)
    cases: list[Case] = []
    notes = []
    if root is None:
        notes.append("official fixtures not found (set VADMON_REFERENCE_DIR): demo model only")
    else:
        cases += [fixture_case(root, preset) for preset in ("ucf", "xd")]
    cases.append(demo_case(48 if opts.quick else 160))
    rows = [r for case in cases for r in lookahead_rows(case)]
    rows += [int8_row(case, 16 if opts.quick else 48) for case in cases]
    notes += [
        "corr / max_abs / mean_abs: streaming C-Branch probability vs offline (256-chunks)",
        "events: default alert settings on both streams; event_f1 = F1 of overlap-matched "
        "events, state_agree = share of snippets with the same in-event state",
        f"added latency = lookahead × {SNIPPET_S:.2f} s (16-frame snippets at 25 fps)",
    ]
    return BenchResult("lookahead", "streaming vs offline agreement per lookahead",
                       "corr", rows, notes)  # fmt: skip
