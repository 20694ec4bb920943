"""Retention for real: media and outbox rows pruned by age and by total size, oldest first,
never an open event's files; no room under the cap → the event goes out without media.

Real parts: the alert pipeline built by the monitor's own mapping from config text, files in
the media directory, a SQLite outbox, an HTTP receiver on 127.0.0.1.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from retention_support import DAY, closed_event, jpeg, previews, stored
from webhook_receiver import Receiver
from webhook_support import SECRET, config, hook, score

from vadmon.alerts.outbox import Outbox
from vadmon.alerts.process import AlertPipeline
from vadmon.settings import alert_settings


def open_event(pipeline: AlertPipeline) -> str:
    """Scores that open an event on camera lobby (and keep it open); returns its id."""
    pipeline.start()
    previews(pipeline, 8)
    for i in range(3):
        pipeline.on_message(score(i, 0.9))
    (cam,) = pipeline.tracker.cameras.values()
    assert cam.open_event is not None
    return cam.open_event.id


def test_media_older_than_media_days_goes_but_not_an_open_events(tmp_path: Path) -> None:
    cfg = config(tmp_path, hook("h", "http://127.0.0.1:9/x"))  # default media_days: 7
    pipeline = AlertPipeline(alert_settings(cfg))
    media = cfg.storage.media_dir
    old = stored(media, "lobby", "1600000000.000000-old000", jpeg(2000, 1), 8 * DAY)
    recent = stored(media, "lobby", "1690000000.000000-new000", jpeg(2000, 2), 6 * DAY)
    event_id = open_event(pipeline)
    snapshot = media / "lobby" / f"{event_id}.jpg"
    assert snapshot.is_file()
    os.utime(snapshot, (time.time() - 9 * DAY,) * 2)  # older than the limit, but still open
    pipeline.prune(time.time())
    assert not old.exists() and recent.exists() and snapshot.exists()
    pipeline.shutdown()


def test_media_over_the_size_cap_goes_oldest_first(tmp_path: Path) -> None:
    cap_bytes = 20_000
    cfg = config(tmp_path, hook("h", "http://127.0.0.1:9/x"))
    cfg.storage.retention.max_media_gb = cap_bytes / 1e9
    pipeline = AlertPipeline(alert_settings(cfg))
    media = cfg.storage.media_dir
    files = [
        stored(media, "lobby", f"17000000{i:02d}.000000-ev{i:04d}", jpeg(6000, i), (10 - i) * 60)
        for i in range(6)
    ]
    total = sum(f.stat().st_size for f in files)
    assert total > cap_bytes
    pipeline.prune(time.time())
    kept = [f.exists() for f in files]
    assert kept == sorted(kept), f"not oldest first: {kept}"  # a run of False, then True
    assert sum(f.stat().st_size for f in files if f.exists()) <= cap_bytes
    assert kept[-1] and not kept[0]
    pipeline.shutdown()


def test_no_room_under_the_cap_sends_the_event_without_media(tmp_path: Path) -> None:
    with Receiver([SECRET]) as rx:
        cfg = config(tmp_path, hook("h", rx.url))
        cfg.storage.retention.max_media_gb = 1_000 / 1e9  # smaller than any snapshot
        pipeline = AlertPipeline(alert_settings(cfg))
        media = cfg.storage.media_dir
        other = stored(media, "lobby", "1600000000.000000-open00", jpeg(500, 3), 60)
        pipeline.start()
        previews(pipeline, 8, size=4000)
        for i, value in enumerate([0.9, 0.9, 0.9, 0.1, 0.1, 0.1]):
            pipeline.on_message(score(i, value))
        status = pipeline.status()
        pipeline.shutdown()
        got = rx.wait_for(2, ok_only=True)
    start, end = (r.json for r in got)
    assert start["type"].endswith("start") and start["data"]["snapshot_path"] is None
    assert end["type"].endswith("end") and end["data"]["clip_path"] is None
    assert status.counters.get("media_skipped") >= 1
    assert other.exists()  # nothing deleted in vain for a file that could never fit
    assert [p for p in media.rglob("*") if p.suffix in (".jpg", ".mp4")] == [other]


def test_outbox_pruned_by_age_and_size_never_open_or_pending(tmp_path: Path) -> None:
    cfg = config(tmp_path, hook("h", "http://127.0.0.1:9/x"))
    now = time.time()
    outbox = Outbox(cfg.storage.outbox_db)
    for i in range(400):  # closed and delivered, one an hour from 40 days ago
        closed_event(outbox, i, now - 40 * DAY + i * 3600)
    closed_event(outbox, 900, now - 50 * DAY, pending=True)  # still to be sent
    old_open = {"id": "open1", "camera": "lobby", "start_ts": now - 60 * DAY}
    outbox.record_event(old_open, "open", now=now - 60 * DAY)
    ids = lambda: {e["id"] for e in outbox.list_events(limit=10_000)}  # noqa: E731
    removed = outbox.prune(now - 30 * DAY, None)  # events_days: 30
    assert removed == 10 * 24  # the first 10 days' worth are older than 30 days
    assert {"ev0900", "open1"} <= ids() and "ev0000" not in ids()
    remaining = sorted(i for i in ids() if i.startswith("ev0") and i != "ev0900")
    outbox.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    size_before = cfg.storage.outbox_db.stat().st_size
    cap = outbox.live_bytes() // 2
    outbox.prune(None, cap)
    assert outbox.live_bytes() <= cap
    left = sorted(i for i in ids() if i.startswith("ev0") and i != "ev0900")
    assert left == remaining[len(remaining) - len(left) :]  # the newest survived
    assert {"ev0900", "open1"} <= ids()
    outbox.close()  # checkpoints the WAL into the file
    assert cfg.storage.outbox_db.stat().st_size < size_before * 0.75  # pages given back
