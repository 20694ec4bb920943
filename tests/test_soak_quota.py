"""Soak with a tiny disk quota: the whole monitor, flashing cameras, retention caps of a few
hundred KB. No crash, every webhook delivered (events without media when there is no room),
media never above its cap, outbox held near its cap; prints a 24 h projection.

Short in CI (``VADMON_SOAK_QUOTA_S``, default 45 s of events); set it to 3600 for an hour.
The projection: bytes one event stores (snapshot + clip + outbox rows, measured here) times the
demo's event rate (``configs/demo.yaml``: one flash every 20 s per camera).
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import cv2
import pytest
from capture_support import wait_for
from monitor_support import Listener, Monitor, outbox_drained, write_config
from webhook_receiver import Receiver

from vadmon.alerts.clip_writer import Frame
from vadmon.alerts.outbox import Outbox
from vadmon.alerts.signing import generate_secret
from vadmon.alerts.video import encode_clip
from vadmon.capture.source import SyntheticSource
from vadmon.config import load_config

pytestmark = pytest.mark.slow
CAMERAS = {f"cam{i}": "synthetic:w=320&h=240&fps=10&flash=6&flash_len=20" for i in range(2)}
MEDIA_CAP = 6_000  # bytes: two snapshots fit, a clip never does: the quota runs out
OUTBOX_CAP = 300_000  # bytes
DEMO_EVENTS_PER_DAY = 86400 / 20  # configs/demo.yaml: a flash every 20 s


def media_files(root: Path) -> dict[Path, int]:
    out: dict[Path, int] = {}
    if root.is_dir():
        for path in root.rglob("*"):
            if path.suffix in (".jpg", ".mp4") and not path.name.startswith("."):
                try:
                    out[path] = path.stat().st_size
                except FileNotFoundError:
                    continue
    return out


def clip_bytes(path: Path, seconds: float) -> int:
    """Size of the clip the alert process cuts for an event this long: the camera's previews
    (320 px JPEG at 5 fps, as configured here) through the same encoder."""
    src = SyntheticSource(width=320, height=240, fps=10.0, flash_every_s=6.0, flash_frames=20)
    frames = []
    for i in range(int(seconds * 5)):
        ok, jpeg = cv2.imencode(".jpg", src.render(i * 2), [cv2.IMWRITE_JPEG_QUALITY, 80])
        assert ok
        frames.append(Frame(i / 5.0, jpeg.tobytes()))
    written = encode_clip(frames, path.with_suffix(""), 5.0)
    assert written
    return Path(written).stat().st_size


def outbox_live(db: Path) -> int:
    if not db.is_file():
        return 0
    reader = Outbox(db, readonly=True)
    try:
        return reader.live_bytes()
    finally:
        reader.close()


def test_soak_with_a_tiny_disk_quota(
    tmp_path: Path, subprocess_env: dict[str, str], demo_checkpoint: Path
) -> None:
    duration = float(os.environ.get("VADMON_SOAK_QUOTA_S", "45"))
    secret = generate_secret()
    env = {**subprocess_env, "HOOK_SECRET": secret}
    storage = (
        f"  retention: {{max_media_gb: {MEDIA_CAP / 1e9}, max_outbox_mb: {OUTBOX_CAP / 1e6},"
        " check_interval_s: 1}"
    )
    with Receiver([secret]) as hook:
        hooks = f"""webhooks:
  - {{name: receiver, url: "{hook.url}", secret: "${{HOOK_SECRET}}", allow_private: true}}"""
        cfg = write_config(
            tmp_path / "quota.yaml", CAMERAS, demo_checkpoint, extra=hooks, storage=storage,
            alerts="threshold: 0.6, min_duration_s: 1.0, cutoff_s: 1.0, cooldown_s: 1",
        )  # fmt: skip
        conf = load_config(cfg, env)
        media, db = conf.storage.media_dir, conf.storage.outbox_db
        mon = Monitor(cfg, env).start()
        listen = Listener(conf.ipc_dir(), list(CAMERAS))
        seen: dict[Path, int] = {}
        peak_media = peak_outbox = 0
        try:
            ok = wait_for(lambda: all(listen.scores_for(c) for c in CAMERAS), 240)
            assert ok, mon.output()[-3000:]
            end = time.monotonic() + duration
            while time.monotonic() < end:
                files = media_files(media)
                for path, size in files.items():
                    seen[path] = max(size, seen.get(path, 0))
                peak_media = max(peak_media, sum(files.values()))
                peak_outbox = max(peak_outbox, outbox_live(db))
                assert mon.proc.poll() is None, mon.output()[-3000:]
                time.sleep(0.25)

            assert wait_for(lambda: outbox_drained(db), 60, 0.5)
            assert mon.stop() == 0
        finally:
            listen.close()
            mon.kill_all()
        received = [r.json for r in hook.verified()]
    out = mon.output()
    assert "Traceback" not in out, out[-4000:]
    starts = [r["data"] for r in received if r["type"] == "vadmon.event.start"]
    ends = [r["data"] for r in received if r["type"] == "vadmon.event.end"]
    assert {s["camera"] for s in starts} == set(CAMERAS), f"{len(starts)} starts"
    without = [s for s in starts if s["snapshot_path"] is None]
    clipless = [e for e in ends if e["clip_path"] is None]
    assert peak_media <= MEDIA_CAP, f"media reached {peak_media} B > cap {MEDIA_CAP} B"
    assert peak_outbox <= OUTBOX_CAP + 64_000, f"outbox reached {peak_outbox} B"
    snaps = [s for p, s in seen.items() if p.suffix == ".jpg"]
    assert snaps, "no snapshot written at all"
    pruned = len(seen) - len(media_files(media))
    rows = sum(len(json.dumps(r)) for r in received) / max(1, len(starts))
    seconds = sum(e["duration_s"] for e in ends) / max(1, len(ends)) + 2.0  # + pre/post roll
    clip = clip_bytes(tmp_path / "clip.mp4", seconds)  # clips rarely fit this cap: measure one
    per_event = sum(snaps) / len(snaps) + clip + rows
    print(
        f"\nquota soak {duration:.0f} s: {len(starts)} events, {len(without)} without snapshot, "
        f"{len(clipless)} without clip, {pruned} media files pruned; peak media {peak_media / 1e3:.0f} kB "
        f"(cap {MEDIA_CAP / 1e3:.0f}), peak outbox {peak_outbox / 1e3:.0f} kB "
        f"(cap {OUTBOX_CAP / 1e3:.0f}); {per_event / 1e3:.0f} kB per event → "
        f"{per_event * DEMO_EVENTS_PER_DAY / 1e9:.2f} GB/day per camera at the demo rate "
        f"(1 event / 20 s) without retention"
    )
    assert clipless or without, "the quota never ran out: make MEDIA_CAP smaller"
