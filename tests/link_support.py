"""Helpers shared by tests (moved from test_link.py; test modules import only *_support modules)."""

from __future__ import annotations

import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np

from vadmon.runtime.link import FRAME_HEIGHT, FRAME_WIDTH
from vadmon.runtime.messages import SnippetMessage


def keys_generate(env: dict[str, str], directory: Path, name: str) -> None:
    out = subprocess.run(
        [sys.executable, "-m", "vadmon", "keys", "generate", name, "--dir", str(directory)],
        env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr


def server_transport(port: int, keys: Path, allowed: Path, bindings: str = "") -> str:
    return f"""  tcp: {{bind: "tcp://127.0.0.1:{port}"}}
  curve:
    server_secret_file: {keys / "server.key_secret"}
    allowed_clients_dir: {allowed}
    {bindings}"""


def client_transport(port: int, keys: Path, client: str) -> str:
    return f"""  tcp: {{connect: "tcp://127.0.0.1:{port}"}}
  curve:
    client_secret_file: {keys / f"{client}.key_secret"}
    server_public_file: {keys / "server.key"}"""


def scrape(port: int) -> str:
    """The monitor's /metrics text ("" while it is not up yet)."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as reply:
            return reply.read().decode()
    except OSError:
        return ""


def handmade_snippet(camera: str, index: int, ahead_s: float = 0.0) -> tuple[SnippetMessage, bytes]:
    """A snippet as a remote capture sends it: one 340×256 frame inline, all red."""
    now = time.time() + ahead_s
    frame = np.zeros((FRAME_HEIGHT, FRAME_WIDTH, 3), np.uint8)
    frame[:, :] = (0, 0, 255)
    msg = SnippetMessage(camera, index, now - 1.6, now, "", FRAME_HEIGHT, FRAME_WIDTH, [0], [index])
    return msg, frame.tobytes()
