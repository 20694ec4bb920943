"""Faults found by independent testing (issue 20), config side: each case a real `vadmon` process.

Case 3: a YAML alias bomb gives one line at once, with bounded memory (address space capped).
"""

from __future__ import annotations

import os
import resource
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
AS_LIMIT = 3 << 30  # the bomb needed 2.9 GB of RSS before the fix


def vadmon(*args: str, timeout: float = 60.0) -> subprocess.CompletedProcess[str]:
    """Run the CLI as a user would, address space capped so a blow-up fails instead of swapping."""

    def cap() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (AS_LIMIT, AS_LIMIT))

    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run(
        [sys.executable, "-m", "vadmon", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        preexec_fn=cap,
        cwd=REPO,
    )


def laughs(levels: int, item: str) -> str:
    """A "billion laughs": each level lists the previous nine times (9**levels values);
    ``item`` is the prefix of each level: ``"  aN: "`` under a key or ``"  - "`` in a list."""
    lines = [item.replace("N", "0") + '&a0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for i in range(1, levels + 1):
        lines.append(item.replace("N", str(i)) + f"&a{i} [" + ",".join([f"*a{i - 1}"] * 9) + "]")
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize("place", ["junk:\n", "tags:\n"])
def test_yaml_alias_bomb_is_one_line_with_bounded_memory(tmp_path: Path, place: str) -> None:
    item = "  aN: " if place.startswith("junk") else "  - "
    path = tmp_path / "bomb.yaml"
    path.write_text("cameras:\n  lobby: {source: 0}\n" + place + laughs(9, item))
    result = vadmon("config", "check", str(path), timeout=30)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.returncode == 2, result.stderr[-2000:]
    assert len(lines) == 1 and "through aliases" in lines[0] and str(path) in lines[0], lines


def test_self_referencing_alias_is_one_line(tmp_path: Path) -> None:
    path = tmp_path / "loop.yaml"
    path.write_text("cameras:\n  lobby: {source: 0}\njunk: &x\n  - *x\n")
    result = vadmon("config", "check", str(path), timeout=30)
    assert result.returncode == 2 and "refers to itself" in result.stderr, result.stderr[-2000:]
    assert "Traceback" not in result.stderr
