"""Calibration says what its footage can show: plotting dependencies are checked before any
scoring, the rate gets an upper bound (rule of three when nothing was seen) and the footage the
target needs, and ``config check`` shows the calibrated threshold in effect."""

from __future__ import annotations

import subprocess
import sys

from calibrate_support import normal_stream
from explain_support import write_config

from vadmon.alerts.calibrate import rate_bound
from vadmon.alerts.scorelog import ScoreLogWriter
from vadmon.config.calibration import write_calibration


def vadmon(env, *args, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "vadmon", *args], capture_output=True, text=True, env=env,
        timeout=300, cwd=cwd,
    )  # fmt: skip


def test_rule_of_three_and_the_footage_a_target_needs():
    upper, needed = rate_bound(0, 0.02, 1.0)
    assert upper == 3 / 0.02 * 24  # 3600/day: 72 s of footage shows almost nothing
    assert needed == 72.0  # three days of normal footage for ≤ 1 false alarm/day
    upper, _ = rate_bound(2, 48.0, 1.0)
    assert upper > 2 / 48 * 24  # never below the observed rate
    assert rate_bound(0, 720.0, 1.0)[0] < 1.0  # a month without one: the target is shown


def test_plot_without_matplotlib_fails_before_any_work(tmp_path, subprocess_env):
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text("import sys\nsys.modules['matplotlib'] = None\n")
    env = dict(subprocess_env, PYTHONPATH=f"{site}:{subprocess_env['PYTHONPATH']}")
    config = write_config(tmp_path)
    # the score source does not exist: an error about it would mean work started first
    out = vadmon(env, "calibrate", "--config", str(config), "--camera", "door",
                 "--from", str(tmp_path / "missing"), "--target-false-alarms-per-day", "1",
                 "--plot", str(tmp_path / "c.png"))  # fmt: skip
    assert out.returncode == 2 and "plots need matplotlib" in out.stderr, out.stderr
    assert "missing" not in out.stderr and not (tmp_path / "c.png").exists()


def test_short_footage_is_flagged_and_check_shows_the_threshold(tmp_path, subprocess_env):
    config = write_config(tmp_path)
    logs = tmp_path / "logs"
    writer = ScoreLogWriter(logs, keep_hours=24 * 365 * 10)
    for msg in normal_stream(5, hours=0.5):
        writer.write(msg)
    writer.close()
    out = vadmon(subprocess_env, "calibrate", "--config", str(config), "--camera", "door",
                 "--from", str(logs), "--target-false-alarms-per-day", "1", "--dry-run")  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert "rule of three" in out.stdout and "needs ≥ 72 h of normal footage" in out.stdout
    assert "warning: only 0.50 h of footage" in out.stderr
    (tmp_path / "model.pt").write_bytes(b"x")  # the check wants the weights present
    check = vadmon(subprocess_env, "config", "check", str(config), cwd=tmp_path)
    assert "threshold in effect: 0.60 (config)" in check.stdout, check.stdout + check.stderr
    write_calibration(tmp_path / "monitor.calibration.yaml", "door", {"threshold": 0.73})
    check = vadmon(subprocess_env, "config", "check", str(config), cwd=tmp_path)
    assert "threshold in effect: 0.73 (calibrated, " in check.stdout, check.stdout + check.stderr
