"""Score logs and replay: a recorded run's alerts are reproduced exactly from its score log."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import yaml
from config_support import write_config_file
from explain_support import drive, feed_event, pipeline, score, write_config

from vadmon.alerts.outbox import Outbox
from vadmon.alerts.scorelog import ScoreLogWriter, read_logs


def run_cli(env, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "vadmon", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )


def record_run(tmp_path: Path) -> tuple[Path, list[dict]]:
    """A live alert pipeline over two cameras, three events and a cooldown suppression."""
    config = write_config(tmp_path)
    pipe = pipeline(config)
    try:
        t0 = time.time() - 200
        feed_event(pipe, t0, range(5, 15), n=30)  # door: event 1
        feed_event(pipe, t0 + 15, range(3, 8), n=30)  # door: within cooldown → suppressed
        feed_event(pipe, t0 + 60, range(4, 12), n=30)  # door: event 2 after cooldown
        rng = np.random.default_rng(3)
        for i in range(40):  # yard: noisy, one event
            hot = 10 <= i < 20
            value = 0.9 if hot else float(rng.uniform(0, 0.4))
            probs = [0.1, 0.7, 0.1, 0.1] if hot else [0.8, 0.1, 0.05, 0.05]
            pipe.on_message(score(i, t0 + 100, value, probs, camera="yard").to_parts())
        drive(
            pipe,
            lambda: (
                len([e for e in pipe.outbox.list_events(None, None, 100) if e["state"] == "closed"])
                == 3
            ),
        )
        assert pipe.tracker.counters()["suppressed_cooldown"] == 1
    finally:
        pipe.shutdown()
    events = Outbox(tmp_path / "data" / "outbox.sqlite", readonly=True).list_events(None, None, 100)
    return config, events


def test_replay_reproduces_the_recorded_run_exactly(tmp_path, subprocess_env):
    config, live = record_run(tmp_path)
    assert len(live) == 3
    out = run_cli(subprocess_env, "replay", "--config", str(config), "--json")
    assert out.returncode == 0, out.stderr
    replayed = json.loads(out.stdout)
    key = lambda e: (e["id"], e["camera"], e["label"], e["start_ts"], e["end_ts"], e["peak_score"])  # noqa: E731
    assert sorted(map(key, replayed)) == sorted(
        key({**json.loads(e["data"]), "end_ts": e["end_ts"]}) for e in live
    )
    stored = {e["id"]: json.loads(e["data"]) for e in live}
    for ev in replayed:
        assert ev["label_prob"] == stored[ev["id"]]["label_prob"]
        assert ev["explanation"]["text"] == stored[ev["id"]]["explanation"]["text"]


def test_replay_with_other_settings_shows_what_would_have_fired(tmp_path, subprocess_env):
    config, _ = record_run(tmp_path)
    stricter = yaml.safe_load(config.read_text())
    stricter["defaults"]["alerts"]["threshold"] = 0.92
    write_config_file(tmp_path / "strict.yaml", stricter)
    out = run_cli(subprocess_env, "replay", "--config", str(tmp_path / "strict.yaml"))
    assert out.returncode == 0, out.stderr
    assert "2 event(s)" in out.stdout  # yard peaks at 0.9: no longer an event
    assert "yard" not in out.stdout and out.stdout.count("  door  ") == 2
    missing = run_cli(subprocess_env, "replay", str(tmp_path / "nothing"), "--config", str(config))
    assert missing.returncode == 2 and missing.stderr.count("\n") == 1
    assert "no scored snippets found" in missing.stderr


def test_score_log_rotates_prunes_and_survives_torn_lines_and_bad_disks(tmp_path):
    root = tmp_path / "scores"
    writer = ScoreLogWriter(root, keep_hours=2)
    now = time.time()
    old = now - 5 * 3600
    for i in range(3):
        writer.write(score(i, old, 0.2, [0.7, 0.1, 0.1, 0.1]))  # an hour file 5 h ago
    for i in range(3):
        writer.write(score(i, now - 10, 0.123456789, [0.7, 0.1, 0.1, 0.1]))
    writer.close()
    files = sorted(root.glob("door/*.jsonl"))
    assert len(files) == 1, "the 5-hour-old file was pruned at rotation"
    assert writer.counters["score_log_pruned"] == 1
    with open(files[0], "a") as fh:
        fh.write('{"i": 9, "t0": 1.0, "t1"')  # cut by a crash
    got = read_logs([root])
    assert [m.snippet_index for m in got] == [0, 1, 2]
    assert got[0].score == float(np.float32(0.123456789))  # the float32 the model produced
    assert got[0].class_names == ["normal", "fighting", "explosion", "arson"]
    (tmp_path / "blocked").write_text("a file where a folder should be")
    broken = ScoreLogWriter(tmp_path / "blocked", keep_hours=1)
    broken.write(score(0, now, 0.5, [0.25] * 4))  # must not raise
    assert broken.counters == {"score_log_lines": 0, "score_log_errors": 1, "score_log_pruned": 0}


def test_score_log_can_be_switched_off(tmp_path):
    config = write_config(tmp_path, "score_log: {enabled: false}\n")
    pipe = pipeline(config)
    try:
        feed_event(pipe, time.time() - 20, range(5, 15))
    finally:
        pipe.shutdown()
    assert not (tmp_path / "data" / "scores").exists()
    assert pipe.counters["scores"] == 30
