"""Reviewer feedback in SQLite: the migration keeps every existing row, event pages use their
indexes, ``vadmon calibrate --from-feedback`` turns false alarms into per-camera thresholds."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from pathlib import Path

import yaml
from web_support import env, load, web_config

from vadmon.alerts.feedback_calibrate import propose
from vadmon.alerts.outbox import Outbox
from vadmon.web.store import EventQuery, EventStore

OLD_SCHEMA = """
CREATE TABLE events (id TEXT PRIMARY KEY, camera TEXT NOT NULL, label TEXT NOT NULL,
    label_prob REAL, start_ts REAL NOT NULL, end_ts REAL, peak_score REAL, peak_ts REAL,
    state TEXT NOT NULL, data TEXT NOT NULL, updated_at REAL NOT NULL);
CREATE INDEX events_camera_start ON events(camera, start_ts);
"""


def event(i: int, camera: str = "door", peak: float = 0.7) -> dict:
    ts = 1_700_000_000.0 + i
    return {"id": f"{ts:.6f}-ev{i:04d}", "camera": camera, "label": "fighting",
            "label_prob": 0.6, "start_ts": ts, "end_ts": ts + 2, "peak_score": peak,
            "peak_ts": ts + 1, "duration_s": 2.0}  # fmt: skip


def test_migration_keeps_old_rows_and_adds_feedback(tmp_path: Path) -> None:
    db = tmp_path / "outbox.sqlite"
    old = sqlite3.connect(db)
    old.executescript(OLD_SCHEMA)
    for i in range(3):
        e = event(i)
        old.execute("INSERT INTO events VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                    (e["id"], e["camera"], e["label"], 0.6, e["start_ts"], e["end_ts"], 0.7,
                     e["peak_ts"], "closed", json.dumps({"id": e["id"]}), 0.0))  # fmt: skip
    old.commit()
    old.close()
    reader = Outbox(db, readonly=True)  # a reader of the old file: no table yet, no error
    assert reader.feedback() == {}
    reader.close()
    store = EventStore(db)  # the web process opens it read-write: the migration runs
    rows, _ = store.page(EventQuery(limit=10))
    assert len(rows) == 3
    assert store.set_feedback(event(1)["id"], "false_alarm", "wind") is not None
    assert store.set_feedback("1700000099.000000-nonexi", "confirmed", "") is None
    store.close()
    box = Outbox(db, readonly=True)
    assert len(box.list_events()) == 3
    assert box.feedback()[event(1)["id"]]["note"] == "wind"
    box.close()


def test_event_pages_run_on_indexes(tmp_path: Path) -> None:
    store = EventStore(tmp_path / "outbox.sqlite")
    try:
        for camera, label in ((None, None), ("door", None), (None, "fighting")):
            args = [x for x in (camera, label) if x] + [1.7e9, "1700000000.000000-aaaaaa", 51]
            where = "".join(
                f" AND e.{c} = ?" for c, v in (("camera", camera), ("label", label)) if v
            )
            plan = store.conn.execute(
                "EXPLAIN QUERY PLAN SELECT e.*, f.verdict FROM events e LEFT JOIN feedback f"
                f" ON f.event_id = e.id WHERE 1=1{where} AND (e.start_ts, e.id) < (?, ?)"
                " ORDER BY e.start_ts DESC, e.id DESC LIMIT ?",
                args,
            ).fetchall()
            text = " | ".join(str(r[-1]) for r in plan)
            assert "USING INDEX events_" in text and "TEMP B-TREE" not in text, text
    finally:
        store.close()


def test_proposal_clears_false_alarms_but_keeps_confirmed_events() -> None:
    rows = [{"camera": "door", "verdict": "false_alarm", "peak_score": p} for p in (0.62, 0.71)]
    rows += [{"camera": "yard", "verdict": "false_alarm", "peak_score": 0.8},
             {"camera": "yard", "verdict": "confirmed", "peak_score": 0.75}]  # fmt: skip
    by_cam = {p.camera: p for p in propose(rows, {"door": 0.6, "yard": 0.6, "gate": 0.6})}
    assert by_cam["door"].threshold == 0.72 and by_cam["door"].removed == 2
    assert by_cam["yard"].threshold == 0.75 and by_cam["yard"].kept == 1  # not above 0.75
    assert "gate" not in by_cam


def test_calibrate_from_feedback_writes_thresholds_the_config_then_uses(tmp_path: Path) -> None:
    cfg_path = web_config(tmp_path)
    cfg = load(cfg_path)
    box = Outbox(cfg.storage.outbox_db)
    for i, peak in enumerate((0.66, 0.83, 0.95)):
        box.record_event(event(i, "door", peak), "closed")
    box.close()
    store = EventStore(cfg.storage.outbox_db)
    store.set_feedback(event(0)["id"], "false_alarm", "")
    store.set_feedback(event(1)["id"], "false_alarm", "")
    store.set_feedback(event(2)["id"], "confirmed", "")
    store.close()
    argv = [
        sys.executable,
        "-m",
        "vadmon",
        "calibrate",
        "--config",
        str(cfg_path),
        "--from-feedback",
    ]
    out = subprocess.run(argv, capture_output=True, text=True, env=env(), timeout=60)
    assert out.returncode == 0, out.stderr
    assert "door: threshold 0.60 -> 0.84 (2/2 false alarms gone, 1/1 confirmed kept)" in out.stdout
    written = yaml.safe_load(cfg_path.with_suffix(".calibration.yaml").read_text())
    assert written["cameras"]["door"]["threshold"] == 0.84 and "yard" not in written["cameras"]
    assert load(cfg_path).cameras["door"].alerts.threshold == 0.84
    listed = subprocess.run(
        [sys.executable, "-m", "vadmon", "events", "--config", str(cfg_path), "--json"],
        capture_output=True, text=True, env=env(), check=True,
    ).stdout  # fmt: skip
    verdicts = {e["id"]: (e["feedback"] or {}).get("verdict") for e in json.loads(listed)}
    assert verdicts[event(0)["id"]] == "false_alarm" and verdicts[event(2)["id"]] == "confirmed"
    none = subprocess.run(argv + ["--camera", "yard"], capture_output=True, text=True, env=env())
    assert none.returncode == 2 and "no false alarms marked" in none.stderr
