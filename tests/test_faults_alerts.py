"""Faults found by independent testing (issue 20), alerts side: the real alert process
(``python -m vadmon.alerts``), real SQLite, a real webhook receiver.

Case 12: half-written temporaries a SIGKILL left are swept at the next start.
Case 1: retention never deletes the media of an event whose webhook is still pending; under the
quota the new media is refused (counted) instead.
"""

from __future__ import annotations

import time
from pathlib import Path

from test_alerts import Harness
from test_retention import DAY, closed_event, jpeg, previews, score, stored
from test_webhook_config import config, hook
from webhook_receiver import Receiver

from vadmon.alerts.process import AlertPipeline
from vadmon.config import load_config
from vadmon.settings import alert_settings


def test_start_sweeps_temp_files_a_killed_run_left(subprocess_env) -> None:
    with Receiver([]) as rx:
        h = Harness(subprocess_env, rx.url)
        try:
            media = load_config(h.config).storage.media_dir / "lobby"
            media.mkdir(parents=True)
            dead = media / ".20261201T120000-lobby-ab12.mp4.1f2e3d4c.mp4"  # atomic_path's name
            dead.write_bytes(b"")
            finished, notes = media / "20261201T110000-lobby-cd34.mp4", media / ".notes"
            finished.write_bytes(b"clip")
            notes.write_text("the user's own dotfile")
            h.start()
            assert h.wait_counter("temp_swept", 1)["temp_swept"] == 1
            assert not dead.exists() and finished.read_bytes() == b"clip" and notes.exists()
        finally:
            h.close()


def test_retention_keeps_media_a_pending_webhook_refers_to(tmp_path: Path) -> None:
    cfg = config(tmp_path, hook("h", "http://127.0.0.1:9/x"))  # receiver down; media_days: 7
    cfg.storage.retention.max_media_gb = 5_000 / 1e9  # the held file is ~4.3 kB
    pipeline = AlertPipeline(alert_settings(cfg))
    media, now = cfg.storage.media_dir, time.time()
    closed_event(pipeline.outbox, 1, now - 9 * DAY, pending=True)  # its end not delivered yet
    closed_event(pipeline.outbox, 2, now - 9 * DAY)  # delivered
    waiting = stored(media, "lobby", "ev0001", jpeg(6000, 1), 9 * DAY)
    sent = stored(media, "lobby", "ev0002", jpeg(2000, 2), 9 * DAY)
    pipeline.prune(now)
    assert waiting.exists() and not sent.exists()  # before: both deleted (age)
    # a new event: its snapshot does not fit beside the held one: refused, counted
    pipeline.start()
    previews(pipeline, 8, size=4000)
    for i in range(3):
        pipeline.on_message(score(i, 0.9))
    assert pipeline.status().counters["media_skipped"] >= 1
    assert waiting.exists()  # before: deleted to make room
    pipeline.shutdown()
