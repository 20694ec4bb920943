"""Child processes for benchmarks that need real, separate processes (transport, monitor).

Children run ``python -m ...`` with this checkout first on ``PYTHONPATH`` (the same ``vadmon``
the parent imported) and in their own session, so a child that overruns its deadline is killed
together with everything it started. Results come back as one JSON line on stdout, never
pickle.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]


def child_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra or {})
    return env


def start(args: list[str], env: dict[str, str] | None = None, **kw: Any) -> subprocess.Popen:
    """``python -m`` + args, own session, stdout piped (the JSON result), stderr piped."""
    return subprocess.Popen(
        [sys.executable, "-m", *args],
        stdout=kw.pop("stdout", subprocess.PIPE),
        stderr=kw.pop("stderr", subprocess.PIPE),
        text=True,
        env=env or child_env(),
        start_new_session=True,
        **kw,
    )


def kill(proc: subprocess.Popen) -> None:
    """SIGKILL the child's whole session (it was started with its own)."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.communicate(timeout=5)


def result(proc: subprocess.Popen, timeout_s: float, what: str) -> dict[str, Any]:
    """Wait for the child's JSON line; raises ``RuntimeError`` with its stderr tail if none."""
    try:
        out, err = proc.communicate(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        kill(proc)
        raise RuntimeError(f"{what} did not finish within {timeout_s:.0f} s") from None
    lines = [line for line in (out or "").splitlines() if line.startswith("{")]
    if proc.returncode != 0 or not lines:
        tail = (err or "").strip().splitlines()[-1:] or ["no output"]
        raise RuntimeError(f"{what} failed (exit {proc.returncode}): {tail[0][:300]}")
    return json.loads(lines[-1])
