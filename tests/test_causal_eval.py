"""``vadmon eval --causal``: the replay is the monitor's scorer, and time to detect follows the
monitor's clock and alert rules."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

from tests import synth_videos as sv
from tests import train_helpers as th
from tests.config_support import event_settings, write_config
from vadmon import cli
from vadmon.config.load import load_config
from vadmon.inference.build import build_scorer
from vadmon.inference.offline import score_video
from vadmon.inference.provisional import attach
from vadmon.model import checkpoint as ckpt_mod
from vadmon.research import causal
from vadmon.research import causal_detect as cd
from vadmon.settings import capture_settings


class Recording:
    """The monitor's encoder, keeping each snippet embedding it hands to the scorer."""

    def __init__(self, encoder) -> None:
        self.encoder, self.clip, self.rows = encoder, encoder.clip, []

    def encode(self, frames):
        out = self.encoder.encode(frames)
        self.rows.append(out[0].numpy().copy())
        return out


def test_causal_replay_equals_the_monitors_scores(tmp_path: Path, demo_checkpoint: Path) -> None:
    """A rendered video through the monitor's calibration pipeline (snippet assembly, encoder,
    the scorer ``build_scorer`` makes from the config); the same embeddings replayed by
    ``eval --causal`` give the same scores, for a lookahead and window that make the block
    alignment and the end-of-video flush matter."""
    clip = sv.write_clip(tmp_path / "v.avi", 30, (12, 18), seed=3, label="Flash")
    model_cfg = {"mode": "vadclip", "checkpoint": str(demo_checkpoint), "precision": "fp32",
                 "device": "cpu", "window": 20, "lookahead": 3, "max_gap": 2}  # fmt: skip
    config = write_config(
        tmp_path, model=model_cfg, cameras={"cam": {"source": str(clip.path), "fps": 16}}
    )
    cfg = load_config(config)
    built = build_scorer(cfg.model, "cpu")
    scorer, encoder = built.scorer, built.encoder
    attach(scorer, frozenset({"cam"}))  # as inference does for alerts.provisional cameras
    rec = Recording(encoder)
    live = score_video(clip.path, "cam", capture_settings(cfg, "cam").snippet, scorer, rec)
    live_early = scorer.take_early()
    assert [m.snippet_index for m in live] == list(range(30))
    setup = causal.setup_from(config, "cam", fps=16)
    assert (setup.window, setup.max_gap, setup.rules.threshold) == (20, 2, 0.5)
    model = ckpt_mod.load(demo_checkpoint).build("cpu")
    steps: list = []
    out, had = causal.replay(causal.monitor_scorer(model, setup, 3), "v", np.stack(rec.rows), steps)
    # the provisional (lookahead-0) scores too: the replay's are the monitor's
    early = [s for step in steps for s in step.early]
    assert [s.index for s in early] == [s.index for s in live_early] == list(range(30))
    np.testing.assert_allclose([s.score for s in early],
                               [s.score for s in live_early], rtol=0, atol=1e-6)  # fmt: skip
    np.testing.assert_allclose(out["coarse"], [m.score for m in live], rtol=0, atol=1e-6)
    np.testing.assert_allclose(out["class_probs"], [m.class_probs for m in live], atol=1e-6)
    assert had == [int(m.timings["lookahead"]) for m in live] and had[-1] == 0 and had[0] == 3


def test_time_to_detect_follows_the_clock_and_alert_rules() -> None:
    """A step at snippet 10 of an event annotated from frame 160 (onset 6.4 s at 25 fps)."""
    snippet_s = 16 / 25
    coarse = np.r_[np.full(10, 0.1), np.full(10, 0.9), np.full(10, 0.1)]
    probs = np.stack([1 - coarse, coarse], axis=1)
    rules = event_settings(min_duration_s=1.0, smoothing="none", cutoff_s=1.0)
    for d in (0, 4):
        stream = cd.Stream(coarse, probs, cd.arrival_times([d] * 30, snippet_s))
        # the score of snippet 10 exists once snippets 10..10+d are captured
        assert cd.snippet_latency(stream, (160, 320), 0.5, 25.0) == pytest.approx(
            (1 + d) * snippet_s
        )
        alerts = cd.alerts_of(stream, ["normal", "event"], rules, snippet_s)
        assert len(alerts) == 1 and alerts[0].start_ts == pytest.approx(10 * snippet_s)
        # min_duration 1 s: confirmed by snippet 11's score (t_end 7.68 s ≥ 6.4 + 1)
        assert cd.alert_latency(alerts, (160, 320), 25.0) == pytest.approx((2 + d) * snippet_s)
        assert cd.alert_latency(alerts, (480, 600), 25.0) is None  # after the alert ended
    assert cd.summary([1.0, 2.0, None, 3.0]) == {"events": 4, "detected": 0.75, "median_s": 2.0,
                                                 "p95_s": 2.9}  # fmt: skip


def test_eval_causal_table_and_json(tmp_path: Path, demo_checkpoint: Path, capsys) -> None:
    """End to end on the train helpers' features (the demo model's width), with a config."""
    ck = ckpt_mod.load(demo_checkpoint)
    videos = th.make_videos(6, seed=4, prefix="c")
    listed = th.write_features(videos, tmp_path / "f", 1, seed=5)
    for path in (tmp_path / "f").glob("*.npy"):  # the demo tower's width
        arr = np.load(path)
        np.save(path, np.resize(arr, (arr.shape[0], ck.config.visual_width)))
    gt = th.write_segment_csv(videos, tmp_path / "gt.csv")
    for path in (listed, gt):  # a class of the demo model, by its UCF list label
        path.write_text(path.read_text().replace("Event", "Explosion"))
    model = {"mode": "vadclip", "checkpoint": str(demo_checkpoint), "window": 32}
    alerts = {"threshold": 0.3, "min_duration_s": 0.5}
    config = write_config(
        tmp_path, model=model, cameras={"door": {"source": "synthetic", "alerts": alerts}}
    )
    rc = cli.main(["eval", str(demo_checkpoint), "--test-list", str(listed), "--gt-csv", str(gt),
                   "--preset", "ucf", "--crop", "0", "--causal", "--lookahead", "0,2",
                   "--config", str(config), "--fps", "10", "--report", str(tmp_path / "r.json")])  # fmt: skip
    out, err = capsys.readouterr()
    assert rc == 0, err
    assert (
        f"causal replay ({config} camera door; window 32, 10 fps, snippet 1.60 s, threshold 0.3)"
        in out
    )
    assert re.search(r"^lookahead 2 +3\.20 ", out, re.M)  # added latency 2 × 1.6 s
    rows = json.loads((tmp_path / "r.json").read_text())["causal"]["rows"]
    assert [r["name"] for r in rows] == ["offline", "lookahead 0", "lookahead 2"]
    assert all(r["detect_alert"]["events"] == 3 for r in rows)
    # the provisional stage (alerts.provisional) replayed where it can gain: lookahead > 0
    assert "provisional" not in rows[1]["extra"]
    pv = rows[2]["extra"]["provisional"]
    assert set(pv) == {"provisional_alerts", "confirmed", "withdrawn", "gain_median_s",
                       "gain_p95_s"}  # fmt: skip
    assert pv["provisional_alerts"] >= pv["confirmed"] >= 0
    shown = re.search(r"^provisional alerts at lookahead 2: gain ", out, re.M) is not None
    assert shown == (pv["provisional_alerts"] > 0)  # the table's line, when there are any
    assert (
        rows[0]["coarse"]["auc"] == json.loads((tmp_path / "r.json").read_text())["coarse"]["auc"]
    )
    rc = cli.main(["eval", str(demo_checkpoint), "--test-list", str(listed), "--causal",
                   "--lookahead", "0,x", "--gt-csv", str(gt)])  # fmt: skip
    assert rc == 2 and "--lookahead '0,x' is not a list" in capsys.readouterr().err
