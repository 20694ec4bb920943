"""The prerequisite helpers: a missing asset or tool skips with one line, or fails under CI=true.

Run in a child pytest on a throwaway test file, so the outcome (skipped/failed and the line the
user sees) is pytest's own report, not a call into the helper.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent

PROBE = """
from pathlib import Path
from conftest import require_asset, require_tool

def test_asset():
    require_asset(Path("/nonexistent/vadmon-probe.bin"), "download it from the probe page")

def test_tool():
    require_tool("vadmon-no-such-tool", "vadmon-probe-pkg")
"""


def run_probe(tmp_path: Path, ci: str | None) -> subprocess.CompletedProcess:
    (tmp_path / "test_probe.py").write_text(PROBE)
    env = {k: v for k, v in os.environ.items() if k != "CI"}
    if ci is not None:
        env["CI"] = ci
    env["PYTHONPATH"] = str(TESTS) + os.pathsep + env.get("PYTHONPATH", "")
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-rsf", "-p", "no:cacheprovider",
         "--rootdir", str(tmp_path), str(tmp_path / "test_probe.py")],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip


@pytest.mark.parametrize("ci", [None, "", "false"])
def test_missing_prerequisite_skips_with_what_and_how(tmp_path: Path, ci: str | None) -> None:
    proc = run_probe(tmp_path, ci)
    assert proc.returncode == 0, proc.stdout
    assert "2 skipped" in proc.stdout
    assert "/nonexistent/vadmon-probe.bin missing: download it from the probe page" in proc.stdout
    assert "command 'vadmon-no-such-tool' missing: apt-get install vadmon-probe-pkg" in proc.stdout


@pytest.mark.parametrize("ci", ["true", "1"])
def test_missing_prerequisite_fails_in_ci(tmp_path: Path, ci: str) -> None:
    proc = run_probe(tmp_path, ci)
    assert proc.returncode == 1, proc.stdout
    assert "2 failed" in proc.stdout and "skipped" not in proc.stdout
    assert "CI=true: prerequisites are required" in proc.stdout
    assert "download it from the probe page" in proc.stdout
