"""Helpers shared by tests (moved from test_webhook_config.py; test modules import only *_support modules)."""

from __future__ import annotations

from pathlib import Path

from config_support import write_config_file, yaml_part

from vadmon.alerts.signing import generate_secret
from vadmon.config import MonitorConfig, load_config
from vadmon.runtime.messages import ScoreMessage

SECRET = generate_secret()


T0 = 1_700_000_000.0


def config(tmp_path: Path, hooks: str, alerts: str = "") -> MonitorConfig:
    """Camera ``lobby`` without smoothing; ``hooks``: ``hook()`` lines (``${HOOK_SECRET}`` is
    ``SECRET``); ``alerts``: more of lobby's alerts mapping, from a leading comma."""
    lobby_alerts = "{threshold: 0.5, min_duration_s: 1, cutoff_s: 1, smoothing: {kind: none}"
    config = {
        "cameras": {
            "lobby": {"source": "synthetic:", "alerts": yaml_part(lobby_alerts + alerts + "}")}
        },
        "model": {"mode": "vadclip", "checkpoint": "x.pt"},
        "storage": {"dir": tmp_path / "data"},
        **yaml_part("webhooks:\n" + hooks),
    }
    path = write_config_file(tmp_path / "test.yaml", config)
    return load_config(path, {"HOOK_SECRET": SECRET})


def hook(name: str, url: str, extra: str = "") -> str:
    return (
        f"  - {{name: {name}, url: '{url}', secret: '${{HOOK_SECRET}}', allow_private: true"
        f"{', ' + extra if extra else ''}}}\n"
    )


def score(i: int, value: float, probs: tuple[float, ...] = (0.1, 0.8, 0.1)) -> list[bytes]:
    msg = ScoreMessage(
        camera="lobby",
        snippet_index=i,
        t_start=T0 + i,
        t_end=T0 + i + 1,
        score=value,
        fine=value,
        class_names=["normal", "Fighting", "Abuse"],
        class_probs=list(probs),
    )
    return msg.to_parts()
