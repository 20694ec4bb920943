"""Shared fixtures, and the one place that decides what a missing prerequisite means.

Tests that start real processes must run them with ``subprocess_env`` so that the child imports
this checkout's ``vadmon`` (``python -m vadmon ...``), whatever is installed.

What the core tests need ships in ``tests/data/`` (see its README). Anything else (the
full-width official fixtures beside the checkout, Debian packages such as opencv-doc's
``vtest.avi``, GStreamer's RTSP server or tmux) goes through ``require_asset``/``require_tool``/
``require_rtsp_server``: a fresh clone skips with one line naming what is missing and how to get
it, while ``CI=true`` turns the same line into a failure so CI can never silently skip.
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

# One torch (OpenMP) thread in this process and the ones it starts, unless the caller chose: tests
# run one at a time, and on a loaded machine OpenMP's spinning workers make torch many times
# slower (the demo model's training: 18 CPU-s on one thread, > 210 CPU-s unfinished on two, at
# load 16 on 2 cores). Processes that choose their own count (inference, bench) still do.
os.environ.setdefault("OMP_NUM_THREADS", "1")

REPO = Path(__file__).resolve().parents[1]
DATA = REPO / "tests" / "data"
REFERENCE = DATA / "reference"  # vendored: official_compact/{ucf,xd}, annotations
SHARED_REFERENCE = REPO.parent / "shared" / "reference"  # CI puts shared/ beside the clone
OFFICIAL = SHARED_REFERENCE / "official"  # full-width fixtures (~42 MB), not in the repository
VTEST = Path("/usr/share/doc/opencv-doc/examples/data/vtest.avi")
SYSTEM_PYTHON = "/usr/bin/python3"  # Debian's, where python3-gi lives
PYTHON = sys.executable


def cpu_flags() -> set[str]:
    """This machine's CPU flags, read here rather than through vadmon so tests can catch a
    wrong parse in vadmon's own reader."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return set()
    for line in text.splitlines():
        if line.startswith("flags"):
            return set(line.split(":", 1)[1].split())
    return set()


def native_bf16() -> bool:
    """AVX-512-BF16 or AMX-BF16: the CPUs where bf16 weights beat fp32."""
    return bool(cpu_flags() & {"avx512_bf16", "amx_bf16"})


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in ("1", "true", "yes")


def missing(what: str, how_to_get: str) -> None:
    """Skip (a user's checkout) or fail (``CI=true``) with one line: what, and how to get it."""
    line = f"{what} missing: {how_to_get}"
    if in_ci():
        pytest.fail(f"{line} (CI=true: prerequisites are required)", pytrace=False)
    pytest.skip(line)


def require_asset(path: Path, how_to_get: str) -> Path:
    if not path.exists():
        missing(str(path), how_to_get)
    return path


def require_tool(name: str, apt_package: str) -> str:
    found = shutil.which(name)
    if found is None:
        missing(f"command {name!r}", f"apt-get install {apt_package} (.ci/run does)")
    return found


@functools.cache
def _rtsp_server_available() -> bool:
    probe = "import gi; gi.require_version('GstRtspServer', '1.0'); from gi.repository import GstRtspServer"
    try:
        proc = subprocess.run([SYSTEM_PYTHON, "-c", probe], capture_output=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return proc.returncode == 0


def require_rtsp_server() -> str:
    """Debian's Python with GStreamer's RTSP server bindings (``tests/rtsp_server.py`` runs there)."""
    if not _rtsp_server_available():
        missing(
            f"GStreamer RTSP server for {SYSTEM_PYTHON}",
            "apt-get install python3-gi gir1.2-gst-rtsp-server-1.0 gstreamer1.0-plugins-ugly "
            "gstreamer1.0-libav (.ci/run does)",
        )
    return SYSTEM_PYTHON


TRITON_PYTHON = "/opt/vadmon-triton/bin/python"  # venv of Debian's python3 + nvidia-pytriton


@functools.cache
def _triton_venv_available() -> bool:
    probe = "import numpy, onnxruntime, pytriton.triton; assert numpy.__version__ < '2'"
    try:
        proc = subprocess.run([TRITON_PYTHON, "-c", probe], capture_output=True, timeout=120)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return proc.returncode == 0


def require_triton() -> str:
    """The Triton venv (``vadmon/encoder/pytriton_serve.py`` runs there): a real Triton server."""
    if not _triton_venv_available():
        missing(
            f"Triton venv {TRITON_PYTHON}",
            "/usr/bin/python3 -m venv /opt/vadmon-triton && /opt/vadmon-triton/bin/pip install "
            "nvidia-pytriton 'numpy<2' onnxruntime (.ci/run does)",
        )
    return TRITON_PYTHON


def official_preset_dir(preset: str) -> Path:
    """A full-width official fixture (``../shared/reference/official/<preset>``), or skip."""
    return require_asset(
        OFFICIAL / preset,
        "the full-width official fixtures are not in the repository (~42 MB); put the "
        "project's shared/ data beside the checkout (../shared/reference/official)",
    )


@pytest.fixture(scope="session")
def reference_dir() -> Path:
    """The vendored reference data (compact official fixtures and the annotation files)."""
    assert (REFERENCE / "official_compact").is_dir(), f"{REFERENCE} is part of the repository"
    return REFERENCE


@pytest.fixture(scope="session")
def vtest_path() -> Path:
    return require_asset(VTEST, "apt-get install opencv-doc (.ci/run does)")


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
