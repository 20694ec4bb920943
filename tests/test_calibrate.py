"""Threshold calibration: meets a false-alarm target on held-out normal footage; CLI round trip."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from calibrate_support import DT, normal_stream
from config_support import event_settings, rewrite_config
from explain_support import score, write_config

from vadmon.alerts.calibrate import DAY_S, choose, curve, footage_seconds, thresholds_grid
from vadmon.alerts.replay import replay, with_threshold
from vadmon.alerts.scorelog import ScoreLogWriter
from vadmon.config import load_config

BASE = event_settings(
    threshold=0.5, hysteresis=0.1, min_duration_s=2.0, cutoff_s=3.0, cooldown_s=30.0
)


def per_day(scores, threshold: float) -> float:
    n = len(replay(scores, with_threshold(BASE, threshold)).starts())
    return n * DAY_S / footage_seconds(scores)


def test_calibrated_threshold_meets_the_target_on_held_out_footage():
    train, held_out = normal_stream(1, hours=8), normal_stream(2, hours=8)
    target = 6.0
    points = curve(train, BASE, thresholds_grid(0.2, 0.95, 0.025))
    chosen = choose(points, target)
    assert chosen is not None and 0.2 < chosen.threshold < 0.95
    assert chosen.per_day <= target
    below = [p for p in points if p.threshold < chosen.threshold]
    assert below and below[-1].per_day > target, "the most sensitive threshold meeting the target"
    held = per_day(held_out, chosen.threshold)
    assert held <= target * 1.5 + 3, f"held-out {held:.1f}/day vs target {target}"
    assert per_day(held_out, 0.2) > 3 * target, "the footage does produce false alarms"


def test_choose_is_robust_to_a_bump_in_the_curve():
    from vadmon.alerts.calibrate import CurvePoint

    pts = [
        CurvePoint(0.5, 9, 9.0),
        CurvePoint(0.6, 1, 1.0),
        CurvePoint(0.7, 5, 5.0),
        CurvePoint(0.8, 0, 0.0),
    ]
    assert choose(pts, 2.0).threshold == 0.8
    assert choose(pts, 5.0).threshold == 0.6
    assert choose([CurvePoint(0.9, 3, 3.0)], 1.0) is None


def run_cli(env, *args) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "vadmon", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )


def test_cli_writes_an_override_the_config_loader_applies(tmp_path, subprocess_env):
    config = write_config(tmp_path)
    logs = tmp_path / "logs"
    writer = ScoreLogWriter(logs, keep_hours=24 * 365 * 10)
    for msg in normal_stream(5, hours=3):
        writer.write(msg)
    writer.close()
    assert load_config(config).cameras["door"].alerts.threshold == 0.6
    out = run_cli(
        subprocess_env,
        "calibrate",
        "--config",
        str(config),
        "--camera",
        "door",
        "--from",
        str(logs),
        "--target-false-alarms-per-day",
        "4",
        "--plot",
        str(tmp_path / "curve.png"),
    )
    assert out.returncode == 0, out.stderr
    written = tmp_path / "monitor.calibration.yaml"
    assert f"written to {written}" in out.stdout
    assert (tmp_path / "curve.png").read_bytes()[:4] == b"\x89PNG"
    threshold = load_config(config).cameras["door"].alerts.threshold
    assert threshold != 0.6 and f"threshold {threshold:.2f}" in out.stdout
    # the override is what replay (and so the live monitor) now uses
    again = run_cli(subprocess_env, "replay", str(logs), "--config", str(config), "--json")
    import json

    hours = 3.0
    assert len(json.loads(again.stdout)) * 24 / hours <= 4.0
    # no threshold can meet a target on footage that is anomalous throughout
    hot = tmp_path / "hot"
    w = ScoreLogWriter(hot, keep_hours=24 * 365 * 10)
    for i in range(400):
        w.write(score(i, 1_700_000_000.0 + (i // 40) * 120, 1.0, [0, 1, 0, 0], dt=DT))
    w.close()
    bad = run_cli(
        subprocess_env,
        "calibrate",
        "--config",
        str(config),
        "--camera",
        "door",
        "--from",
        str(hot),
        "--target-false-alarms-per-day",
        "1",
    )
    assert bad.returncode == 2 and "no threshold meets the target" in bad.stderr
    assert bad.stderr.count("\n") == 1
    assert load_config(config).cameras["door"].alerts.threshold == threshold  # untouched


def test_broken_calibration_file_is_one_clear_error(tmp_path):
    config = write_config(tmp_path)
    (tmp_path / "monitor.calibration.yaml").write_text("cameras:\n  door: {threshold: 7}\n")
    from vadmon.errors import VadmonError

    with pytest.raises(VadmonError, match="threshold must be a number in"):
        load_config(config)
    named = write_config(tmp_path, "calibration_file: elsewhere.yaml\n")
    with pytest.raises(VadmonError, match="calibration file not found"):
        load_config(named)


def test_calibrate_from_a_real_video_with_the_monitor_pipeline(
    tmp_path, subprocess_env, vtest_path: Path
):
    """Real footage through the monitor's own snippet assembly, encoder and scorer (zero-shot
    with a local tiny-CLIP weights file: no training, no download)."""
    import torch

    from vadmon.model.clip_factory import create_clip

    weights = tmp_path / "tiny-clip.pt"
    torch.save(create_clip("vadmon-tiny").state_dict(), weights)
    model = {
        "mode": "zeroshot",
        "clip_arch": "vadmon-tiny",
        "clip_pretrained": str(weights),
        "class_names": ["normal", "fighting", "explosion"],
    }
    config = rewrite_config(write_config(tmp_path), lambda c: c.update(model=model))
    out = run_cli(
        subprocess_env,
        "calibrate",
        "--config",
        str(config),
        "--camera",
        "door",
        "--video",
        str(vtest_path),
        "--target-false-alarms-per-day",
        "100000",
        "--dry-run",
    )
    assert out.returncode == 0, out.stderr
    # vtest.avi: 795 frames at 10 fps = 49 snippets of 16 frames = 78 s of scored footage
    assert "events/day on 0.02 h of normal" in out.stdout
    # the grid starts at the hysteresis (0.1); any threshold meets a huge target: the lowest wins
    assert "0.10 ←" in out.stdout
    assert not (tmp_path / "monitor.calibration.yaml").exists()
