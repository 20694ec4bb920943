"""Faults found by independent testing (issue 20), alerts side: the real alert process
(``python -m vadmon.alerts``), real SQLite, a real webhook receiver.

Case 12: half-written temporaries a SIGKILL left are swept at the next start.
Case 1: retention never deletes the media of an event whose webhook is still pending; under the
quota the new media is refused (counted) instead.
Case 10: the flood guard is configurable, and what it holds back is counted per camera (log,
heartbeat, /metrics), not silent; the held-back event is still recorded with its snapshot.
"""

from __future__ import annotations

import io
import json
import time
from pathlib import Path

from alerts_support import Harness, events_cli
from prometheus_client import CollectorRegistry, generate_latest
from retention_support import DAY, closed_event, jpeg, previews, stored
from rich.console import Console
from webhook_receiver import Receiver
from webhook_support import SECRET, config, hook, score

from vadmon.alerts.process import AlertPipeline
from vadmon.config import load_config
from vadmon.dashboard.prometheus import StateCollector
from vadmon.dashboard.render import render
from vadmon.dashboard.state import DashboardState
from vadmon.runtime.heartbeat import TOPIC, encode, parse_heartbeat
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
    assert pipeline.status().counters.get("media_skipped") >= 1
    assert waiting.exists()  # before: deleted to make room
    pipeline.shutdown()


def test_flood_guard_is_configurable_and_counted_per_camera(
    tmp_path: Path, caplog, subprocess_env
) -> None:
    with Receiver([SECRET]) as rx:
        cfg = config(tmp_path, hook("h", rx.url), ", cooldown_s: 0, flood_max_events: 1")
        pipeline = AlertPipeline(alert_settings(cfg))
        pipeline.start()
        previews(pipeline, 24)  # 12 s of frames: both events get a snapshot
        for i, value in enumerate([0.9] * 3 + [0.1] * 3 + [0.9] * 3 + [0.1] * 3):
            pipeline.on_message(score(i, value))  # two events; the guard allows one
        status = pipeline.status()
        pipeline.shutdown()  # ends the clip of the first event: its end goes out
        got = rx.wait_for(2, ok_only=True)
    assert [r.json["type"] for r in got] == ["vadmon.event.start", "vadmon.event.end"]
    assert status.info.flood_suppressed == {"lobby": 1}  # before: only a silent total
    assert "camera lobby: event not sent: over the flood guard of 1 per 600 s" in caplog.text
    parsed = parse_heartbeat([TOPIC, encode("alerts", status)])
    assert parsed is not None and not parsed.problem, parsed
    state = DashboardState(["lobby"])
    state.update_heartbeat(parsed)
    registry = CollectorRegistry()
    registry.register(StateCollector(state))
    metrics = generate_latest(registry).decode()
    assert 'vadmon_flood_suppressed_events_total{camera="lobby"} 1.0' in metrics
    screen = Console(width=120, height=40, record=True, file=io.StringIO())
    screen.print(render(state, 120, 40))
    lobby = [line for line in screen.export_text().splitlines() if "lobby" in line]
    assert lobby and "held 1" in lobby[0], lobby  # the live view counts it too
    # the held-back event is still on record, with its snapshot: only not pushed
    listed = events_cli(
        subprocess_env, "--db", str(cfg.storage.outbox_db), "--json", "--since", "0"
    )
    assert listed.returncode == 0, listed.stderr
    rows = json.loads(listed.stdout)
    rows = rows.get("events", rows) if isinstance(rows, dict) else rows
    held = [r for r in rows if r.get("state") == "suppressed"]
    assert len(held) == 1 and len(rows) == 2, rows
    data = held[0].get("data", held[0])
    assert "flood guard" in data["reason"] and Path(data["snapshot_path"]).is_file()
