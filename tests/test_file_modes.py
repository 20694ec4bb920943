"""File permissions: artefacts follow the umask, event data is private whatever the umask.

A checkpoint imported by an admin must be readable by the service account that runs the
monitor (group-readable under umask 027); snapshots, clips and the outbox show people and
where they were, so they are 0600 in 0700 directories even under umask 000.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from webhook_support import config, hook, score

from vadmon.alerts.process import AlertPipeline
from vadmon.atomic import atomic_path, atomic_write_text
from vadmon.runtime.messages import PreviewFrame
from vadmon.settings import alert_settings


@contextmanager
def umask(mask: int) -> Iterator[None]:
    old = os.umask(mask)
    try:
        yield
    finally:
        os.umask(old)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.parametrize(("mask", "expected"), [(0o022, 0o644), (0o027, 0o640), (0o077, 0o600)])
def test_artefacts_follow_the_umask(tmp_path: Path, mask: int, expected: int) -> None:
    with umask(mask):
        with atomic_path(tmp_path / "model.pt") as tmp:  # as vadmon.model.checkpoint.save
            torch.save({"w": torch.zeros(2)}, tmp)
        with atomic_path(tmp_path / "features.npz", suffix=".npz") as tmp:  # vadmon score
            np.savez(tmp, x=np.zeros(3))
        atomic_write_text(tmp_path / "report.json", "{}\n")  # vadmon eval
    for name in ("model.pt", "features.npz", "report.json"):
        assert mode(tmp_path / name) == expected, name


def preview(i: int) -> list[bytes]:
    img = np.full((48, 64, 3), 40 + i, np.uint8)
    ok, jpeg = cv2.imencode(".jpg", img)
    assert ok
    return PreviewFrame("lobby", i, 1_700_000_000.0 + i * 0.5, 48, 64).to_parts(jpeg.tobytes())


def test_event_data_is_private_whatever_the_umask(tmp_path: Path) -> None:
    with umask(0):
        cfg = config(tmp_path, hook("h", "http://127.0.0.1:9/x"))
        pipeline = AlertPipeline(alert_settings(cfg))
        pipeline.start()
        for i in range(16):
            pipeline.on_message(preview(i))
        for i, value in enumerate([0.9, 0.9, 0.9, 0.1, 0.1, 0.1]):
            pipeline.on_message(score(i, value))
        pipeline.shutdown()
    data = cfg.storage.dir
    written = [p for p in data.rglob("*")]
    assert any(p.suffix == ".jpg" for p in written) and any(p.suffix == ".mp4" for p in written)
    assert (data / "outbox.sqlite").is_file()
    assert mode(data) == 0o700
    for path in written:
        expected = 0o700 if path.is_dir() else 0o600
        assert mode(path) == expected, f"{path.relative_to(data)}: {oct(mode(path))}"
