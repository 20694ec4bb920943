"""Shared helpers for explanation, narration, score-log and calibration tests.

Alert settings are built the way a real run builds them: a YAML config through the composition
root (``vadmon.monitor.alert_settings``), so these tests follow the schema's defaults.
"""

from __future__ import annotations

import time
from pathlib import Path

import cv2
import numpy as np
from config_support import write_config_file, yaml_part

from vadmon.alerts.process import AlertPipeline
from vadmon.alerts.signing import generate_secret
from vadmon.config import deep_merge, load_config
from vadmon.runtime.messages import PreviewFrame, ScoreMessage
from vadmon.settings import alert_settings

CLASSES = ["normal", "fighting", "explosion", "arson"]
SECRET = generate_secret()


def write_config(
    tmp_path: Path, extra: str = "", webhook: str | None = None, overrides: dict | None = None
) -> Path:
    """Camera ``door`` (synthetic) with fast alert timing; ``extra``: top-level YAML, ``webhook``:
    one receiver signed with ``SECRET``; ``overrides`` deep-merge last."""
    config: dict = {
        "instance": "explain-test",
        "defaults": {
            "alerts": {
                "threshold": 0.6,
                "min_duration_s": 1.0,
                "cutoff_s": 2.0,
                "cooldown_s": 10,
                "pre_capture_s": 1,
                "post_capture_s": 1,
            }
        },
        "cameras": {"door": {"source": "synthetic:w=64&h=48&fps=10"}},
        "model": {"mode": "vadclip", "checkpoint": "model.pt"},
        "storage": {"dir": tmp_path / "data"},
    }
    if webhook:
        hook = {"name": "rx", "url": webhook, "secret": SECRET, "allow_private": True}
        config["webhooks"] = [hook]
    config = deep_merge(deep_merge(config, yaml_part(extra)), overrides or {})
    return write_config_file(tmp_path / "monitor.yaml", config)


def pipeline(config: Path) -> AlertPipeline:
    pipe = AlertPipeline(alert_settings(load_config(config)))
    pipe.start()
    return pipe


def score(
    i: int,
    t0: float,
    value: float,
    probs: list[float],
    phrases: list[tuple[str, float]] = (),
    camera: str = "door",
    dt: float = 0.5,
) -> ScoreMessage:
    return ScoreMessage(
        camera=camera,
        snippet_index=i,
        t_start=t0 + i * dt,
        t_end=t0 + (i + 1) * dt,
        score=float(np.float32(value)),
        fine=float(np.float32(value)),
        class_names=CLASSES,
        class_probs=[float(np.float32(p)) for p in probs],
        t_emitted=t0 + (i + 1) * dt + 0.05,
        phrases=[p for p, _ in phrases],
        phrase_probs=[s for _, s in phrases],
    )


def red_jpeg(red: bool) -> bytes:
    img = np.full((48, 64, 3), (0, 0, 255) if red else (90, 90, 90), np.uint8)
    return cv2.imencode(".jpg", img)[1].tobytes()


def feed_event(pipe: AlertPipeline, t0: float, high: range, n: int = 30) -> list[ScoreMessage]:
    """Scores (and red/grey previews) for one camera: high during ``high``, low elsewhere.

    Fed at once without ticks, so the wall clock cannot expire the event mid-sequence."""
    sent = []
    for i in range(n):
        hot = i in high
        probs = [0.1, 0.2, 0.6, 0.1] if hot else [0.9, 0.04, 0.03, 0.03]
        phrases = [("fire", 0.7), ("smoke", 0.2)] if hot else [("an empty street", 0.8)]
        msg = score(i, t0, 0.95 if hot else 0.05, probs, phrases)
        preview = PreviewFrame(camera="door", seq=i, ts=msg.t_end, height=48, width=64)
        pipe.on_message(preview.to_parts(red_jpeg(hot)))
        pipe.on_message(msg.to_parts())
        sent.append(msg)
    return sent


def drive(pipe: AlertPipeline, done, timeout: float = 30.0) -> None:
    """Run the alert loop's tick (clip completion, narrations) until ``done()`` or timeout."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        pipe.tick(time.time())
        if done():
            return
        time.sleep(0.05)
    raise AssertionError("condition not reached while driving the alert pipeline")
