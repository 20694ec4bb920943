"""Helpers shared by tests (moved from test_link.py; test modules import only *_support modules)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


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
