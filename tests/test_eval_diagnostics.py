"""Per-class AUC/AP and the length/position shortcut diagnostics of ``vadmon eval``."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from tests import train_helpers as th
from vadmon.commands.train import parse_classes
from vadmon.model.clip_factory import create_clip
from vadmon.model.config import load_preset
from vadmon.model.vadclip import VadCLIP
from vadmon.research import eval_diagnostics as diag
from vadmon.research.evaluate import (
    EvalReport,
    GroundTruthSource,
    VideoResult,
    evaluate_model,
    summary_lines,
)


def _video(name: str, label: str, coarse, segments=(), labels=()) -> VideoResult:
    coarse = np.asarray(coarse, dtype=np.float64)
    t = len(coarse)
    return VideoResult(name, label, coarse, coarse, np.zeros((t, 3)), list(segments), list(labels))


def _report(videos: list[VideoResult]) -> EvalReport:
    report = EvalReport("l.csv", ["normal", "a", "b"], ["Normal", "Fire", "Riot"], "csv", videos)
    report.coarse = {"auc": 0.0, "ap": 0.0}
    return report


def test_each_class_is_scored_with_all_normal_videos() -> None:
    rng = np.random.default_rng(0)
    hit = np.r_[np.full(4, 0.1), np.full(4, 0.9), np.full(4, 0.1)]  # event snippets 4..8 high
    videos = [
        _video("a1", "Fire", hit, [(64, 128)], ["Fire"]),
        _video("b1", "Riot", rng.uniform(0, 1, 12), [(64, 128)], ["Riot"]),
        _video("n1", "Normal", rng.uniform(0, 0.5, 10), [(0, 160)], ["Normal"]),
        _video("n2", "Normal", rng.uniform(0, 0.5, 8), [(0, 128)], ["Normal"]),
    ]
    normal = [False, False, True, True]
    per = diag.per_class(_report(videos), normal)
    assert set(per) == {"Fire", "Riot"} and per["Fire"]["videos"] == per["Riot"]["videos"] == 1
    assert per["Fire"]["auc"] > per["Riot"]["auc"]
    # Riot alone against the normal frames: the pairwise ranking of these very frames.
    frames_b = np.concatenate([np.repeat(v.coarse, 16) for v in (videos[1], *videos[2:])])
    gt_b = np.zeros(len(frames_b))
    gt_b[64:128] = 1
    assert per["Riot"]["auc"] == pytest.approx(roc_auc_score(gt_b, frames_b))
    # Normal frames where Fire scores low count: a normal video scoring high lowers Fire's AUC.
    videos[2] = _video("n1", "Normal", np.full(10, 0.95), [(0, 160)], ["Normal"])
    assert diag.per_class(_report(videos), normal)["Fire"]["auc"] < per["Fire"]["auc"]


def test_length_and_position_shortcuts_on_normal_videos_warn() -> None:
    rng = np.random.default_rng(1)
    lengths = list(range(12, 92, 8))  # 10 normal videos
    honest = [_video(f"n{t}", "Normal", rng.uniform(0, 0.3, t)) for t in lengths]
    found = diag.shortcuts(honest)
    assert abs(found["length"]["r"]) < diag.STRONG and abs(found["position"]["r"]) < 0.3
    assert not any(line.startswith("warning") for line in diag.lines({"shortcuts": found}))
    by_length = [_video(f"n{t}", "Normal", rng.uniform(0, 0.1, t) + t / 60) for t in lengths]
    text = diag.lines({"shortcuts": diag.shortcuts(by_length)})
    assert "score~length r=+1.00" in text[0] and "follows length (|r| ≥ 0.5)" in text[1]
    few = diag.shortcuts(by_length[:6])  # reported, but 6 videos are too few to warn
    assert few["length"]["r"] == pytest.approx(1.0) and len(diag.lines({"shortcuts": few})) == 1
    rising = [_video(f"n{t}", "Normal", np.linspace(0, 0.8, t)) for t in lengths[:3]]
    found = diag.shortcuts(rising)
    assert found["length"] is None and found["position"]["r"] == pytest.approx(1.0)
    assert "follows position" in diag.lines({"shortcuts": found})[-1]


def test_eval_report_holds_per_class_and_shortcuts(tmp_path: Path) -> None:
    videos = th.make_videos(10, seed=2, prefix="e")
    listed = th.write_features(videos, tmp_path / "f", 1, seed=3)
    gt = th.write_segment_csv(videos, tmp_path / "gt.csv")
    classes = parse_classes(th.CLASSES)
    cfg = load_preset("ucf").model_config(visual_width=th.WIDTH, visual_length=32, attn_window=8,
                                          clip_arch="vadmon-tiny", class_names=[p for _, p in classes])  # fmt: skip
    model = VadCLIP(cfg, create_clip("vadmon-tiny", None))
    report = evaluate_model(model, listed, dict(classes), GroundTruthSource(csv=gt), crop=0)
    out = report.to_dict(per_video=False)
    assert set(out["per_class"]) == {"Event"} and out["per_class"]["Event"]["videos"] == 5
    assert out["shortcuts"]["normal_videos"] == 5 and out["shortcuts"]["length"] is not None
    text = "\n".join(summary_lines(report))
    assert "class Event (5 videos + all normal): frame AUC" in text and "score~length" in text
