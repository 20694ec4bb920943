"""Shared fixtures.

Tests that start real processes must run them with ``subprocess_env`` so that the child imports
this checkout's ``vadmon`` (``python -m vadmon ...``), whatever is installed.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
REFERENCE = SHARED / "reference"
VTEST = Path("/usr/share/doc/opencv-doc/examples/data/vtest.avi")
PYTHON = sys.executable


@pytest.fixture(scope="session")
def reference_dir() -> Path:
    assert REFERENCE.is_dir(), f"{REFERENCE} missing: CI runs with ../shared beside the repo"
    return REFERENCE


@pytest.fixture(scope="session")
def vtest_path() -> Path:
    assert VTEST.is_file(), f"{VTEST} missing: apt-get install opencv-doc (done by .ci/run)"
    return VTEST


@pytest.fixture()
def subprocess_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    env["PYTHONUNBUFFERED"] = "1"
    return env


@pytest.fixture(scope="session")
def demo_checkpoint(tmp_path_factory) -> Path:
    """The demo's tiny VadCLIP (fires on red flashes), trained once per test session."""
    from vadmon.demo import build_demo_checkpoint

    return build_demo_checkpoint(tmp_path_factory.mktemp("demo") / "demo-tiny.pt")
