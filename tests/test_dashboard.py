"""Dashboard: state from real heartbeat wire messages, rendering at 100×30, a real Live process
in tmux fed over ZeroMQ from another process, the SQLite outbox feed, and Prometheus /metrics."""

from __future__ import annotations

import io
import json
import os
import re
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx
import pytest
from conftest import require_tool
from prometheus_client.parser import text_string_to_metric_families
from rich.cells import cell_len
from rich.console import Console

from vadmon.alerts.outbox import Outbox
from vadmon.config import DashboardConfig, MetricsConfig
from vadmon.dashboard.app import outbox_snapshot
from vadmon.dashboard.live import DEMO_BANNER, Dashboard, DashboardState, render, sparkline
from vadmon.dashboard.prometheus import PrometheusExporter, start_exporter
from vadmon.errors import VadmonError
from vadmon.runtime.child import ChildStatus
from vadmon.runtime.heartbeat import TOPIC, HeartbeatSender, parse_heartbeat

NOW = 1_718_000_000.0


# --- heartbeat builders (the documented schema, sent through the real wire decoder) -------------


def capture_fields(camera: str, state: str, fps: float = 9.8, reconnects: int = 0) -> dict:
    return {
        "camera": camera,
        "state": state,
        "counters": {
            "frames_total": 1200,
            "fps": fps,
            "drops_total": 2,
            "reconnects_total": reconnects,
            "stalls_total": 1,
            "snippets_total": 75,
        },
        "info": {"source": "rtsp://***@10.0.0.5/stream1", "resolution": "768x576"},
    }


def inference_fields(cams: dict[str, tuple[float, str, float]], last_ts: float) -> dict:
    cameras = {
        name: {
            "score": score,
            "label": label,
            "label_prob": prob,
            "fps": 0.6,
            "skipped_total": 7,
            "latency_ms": 42.0,
            "last_ts": last_ts,
        }
        for name, (score, label, prob) in cams.items()
    }
    return {"info": {"device": "cpu", "precision": "fp32", "mode": "vadclip", "cameras": cameras}}


def alerts_fields(events: list[dict], latencies: list[float] | None = None) -> dict:
    return {
        "counters": {"pending": 4, "delivered": 17, "retrying": 2, "dead": 1, "events_total": 9},
        "info": {"recent_events": events, "alert_latency_ms": latencies or []},
    }


def wire(process: str, fields: dict, ts: float = NOW) -> list[bytes]:
    body = {"process": process, "ts": ts, "pid": 1234, **fields}
    return [TOPIC, json.dumps(body).encode()]


def feed(state: DashboardState, process: str, fields: dict, now: float = NOW) -> None:
    hb = parse_heartbeat(wire(process, fields, now))
    assert hb is not None
    state.update_heartbeat(hb, now=now)


EVENTS = [
    {
        "id": "1717999990.000000-abc123",
        "camera": "door",
        "label": "Fighting",
        "prob": 0.81,
        "start": NOW - 10,
        "duration": 10.0,
        "kind": "update",
    },
    {
        "id": "1717999000.000000-def456",
        "camera": "yard",
        "label": "Road Accident",
        "prob": 0.66,
        "start": NOW - 1000,
        "duration": 75.0,
        "kind": "end",
    },
]


def example_state(banner: str | None = DEMO_BANNER) -> DashboardState:
    state = DashboardState(banner=banner)
    feed(state, "capture:door", capture_fields("door", "online"))
    feed(state, "capture:yard", capture_fields("yard", "stalled", fps=0.0, reconnects=3))
    feed(state, "capture:gate", capture_fields("gate", "connecting", fps=0.0))
    cams = {
        "door": (0.87, "Fighting", 0.81),
        "yard": (0.12, "Normal", 0.93),
        "gate": (0.05, "Normal", 0.97),
    }
    for k in range(5):
        feed(state, "inference", inference_fields(cams, last_ts=NOW - 5 + k))
    feed(state, "alerts", alerts_fields(EVENTS, [120.0, 80.0]))
    state.update_children(
        {
            "capture:door": ChildStatus("capture:door", state="running", restarts=0),
            "capture:yard": ChildStatus("capture:yard", state="running", restarts=2),
            "capture:gate": ChildStatus("capture:gate", state="running"),
            "inference": ChildStatus("inference", state="running"),
            "alerts": ChildStatus("alerts", state="backoff", restarts=5),
        }
    )
    return state


def record(state: DashboardState, now: float = NOW, width: int = 100, height: int = 30) -> str:
    console = Console(record=True, width=width, height=height, force_terminal=True)
    console.print(render(state, width, height, now=now))
    return console.export_text()


def line_with(text: str, *needles: str) -> str:
    for line in text.splitlines():
        if all(n in line for n in needles):
            return line
    raise AssertionError(f"no line with {needles!r} in:\n{text}")


def queue(text: str) -> dict[str, int]:
    """The webhook panel's numbers, e.g. ``pending   4      retrying  2``."""
    found = re.findall(r"\b(pending|retrying|delivered|dead) +(\d+)\b", text)
    return {key: int(value) for key, value in found}


def assert_fits(text: str, width: int = 100, height: int = 30) -> None:
    lines = text.splitlines()
    assert len(lines) <= height, f"{len(lines)} lines:\n{text}"
    widest = max(cell_len(line) for line in lines)
    assert widest <= width, f"line of {widest} columns:\n{text}"


# --- rendering --------------------------------------------------------------------------------


def test_render_shows_cameras_scores_events_queue_and_processes() -> None:
    text = record(example_state())
    assert_fits(text)
    assert text.splitlines()[0].startswith("vadmon")
    assert "cameras 1/3 online" in text
    assert line_with(text, DEMO_BANNER)
    door = line_with(text, "door", "online")
    assert "9.8" in door and "0.6" in door and "42" in door and "0.87" in door
    assert "Fighting 0.81" in door
    assert "stalled" in line_with(text, "yard", "0.12", "Normal 0.93")
    assert "connecting" in line_with(text, "gate", "0.05")
    # events panel: newest first, with time, camera, label, prob, duration and lifecycle state
    first = line_with(text, "door", "Fighting", "0.81", "10.0s", "update")
    assert time.strftime("%H:%M:%S", time.localtime(NOW - 10)) in first
    second = line_with(text, "yard", "Road Accident", "0.66", "1m15s", "end")
    assert text.index(first) < text.index(second)
    # webhook queue and processes
    assert queue(text) == {"pending": 4, "retrying": 2, "delivered": 17, "dead": 1}
    alerts = line_with(text, "alerts", "backoff")
    assert alerts.rstrip(" │").endswith("5")
    assert "2" in line_with(text, "capture:yard", "running")
    assert "inference cpu fp32 vadclip" in text and "events 9" in text
    assert "alert lat 0.10s" in text  # mean of 120 ms and 80 ms


def test_no_banner_line_without_banner() -> None:
    text = record(example_state(banner=None))
    assert "PIPELINE DEMO" not in text
    assert "door" in text.splitlines()[2]  # header, column titles, first camera


def test_more_cameras_than_rows_collapse_into_more_line() -> None:
    state = DashboardState(banner=DEMO_BANNER)
    names = [f"cam{i:02d}" for i in range(40)]
    for i, name in enumerate(names):
        feed(state, f"capture:{name}", capture_fields(name, "offline" if i >= 35 else "online"))
    feed(state, "inference", inference_fields({n: (0.2, "Normal", 0.9) for n in names}, NOW))
    feed(state, "alerts", alerts_fields(EVENTS))
    text = record(state)
    assert_fits(text)
    shown = [n for n in names if n in text]
    assert 5 <= len(shown) < 40
    more = line_with(text, "more")
    assert f"+{40 - len(shown)} more" in more
    assert "(5 offline/stalled)" in more  # the hidden tail holds the five offline cameras
    assert queue(text)["pending"] == 4  # the bottom panels still fit


def test_small_terminal_still_fits() -> None:
    text = record(example_state(), width=80, height=14)
    assert_fits(text, width=80, height=14)
    assert "door" in text


def test_silent_capture_or_down_process_shows_offline() -> None:
    state = example_state()
    assert state.view(NOW).cameras[0].state == "online"
    assert {c.name: c.state for c in state.view(NOW + 60).cameras}["door"] == "offline"
    state.update_children({"capture:door": ChildStatus("capture:door", state="failed")})
    assert {c.name: c.state for c in state.view(NOW).cameras}["door"] == "offline"
    assert "inference —" in record(state, now=NOW + 60)  # inference silent too


def test_score_history_and_sparkline() -> None:
    assert sparkline([0.0, 0.5, 1.0], 5) == "  ▁▅█"
    assert sparkline([0.1] * 100, 8) == "▁" * 8
    state = DashboardState()
    for k, score in enumerate([0.0, 0.3, 0.6, 0.99]):
        feed(state, "inference", inference_fields({"door": (score, "Normal", 0.9)}, NOW + k))
    # a heartbeat repeating the same score sample (same last_ts) does not extend the history
    feed(state, "inference", inference_fields({"door": (0.99, "Normal", 0.9)}, NOW + 3))
    (door,) = state.view(NOW).cameras
    assert door.history == (0.0, 0.3, 0.6, 0.99)
    assert sparkline(door.history, 4) in line_with(record(state), "door")
    for k in range(100):
        feed(state, "inference", inference_fields({"door": (0.5, "Normal", 0.9)}, NOW + 10 + k))
    assert len(state.view(NOW).cameras[0].history) == 60


def test_malformed_fields_are_tolerated() -> None:
    state = DashboardState()
    feed(state, "capture:door", {"state": 5, "counters": "x", "info": ["y"]})
    feed(
        state, "inference", {"info": {"cameras": {"door": {"score": "high", "fps": float("inf")}}}}
    )
    feed(state, "inference", {"info": {"cameras": ["door"]}})
    feed(state, "alerts", {"counters": {"pending": True}, "info": {"recent_events": [1, {"x": 1}]}})
    assert parse_heartbeat([TOPIC, b"{not json"]) is None
    (door,) = state.view(NOW).cameras
    assert door.name == "door" and door.state == "connecting"
    assert door.score is None and door.inference_fps is None
    text = record(state)
    assert_fits(text)
    assert "no events yet" in text


def test_outbox_counts_and_events_from_real_sqlite(tmp_path: Path) -> None:
    outbox = Outbox(tmp_path / "outbox.db")
    event = {"id": "e1", "camera": "door", "label": "Fighting", "label_prob": 0.77}
    outbox.enqueue({**event, "start_ts": NOW}, "start", "m1", "{}", ["a", "b"], now=NOW)
    outbox.enqueue({**event, "start_ts": NOW}, "update", "m2", "{}", ["a"], now=NOW + 1)
    closed = {**event, "id": "e0", "label": "Explosion", "start_ts": NOW - 100, "end_ts": NOW - 40}
    outbox.enqueue(closed, "end", "m0", "{}", ["a"], state="closed", now=NOW - 40)
    d_first, d_second, d_third, _ = outbox.due(NOW + 10)
    outbox.mark_delivered(d_first, 1, NOW + 2)
    outbox.mark_dead(d_second, 8, "HTTP 500", NOW + 2)
    outbox.mark_retry(d_third, 1, NOW + 30, "timeout", NOW + 2)
    outbox.close()

    reader = Outbox(tmp_path / "outbox.db", readonly=True)
    counts, events = outbox_snapshot(reader)
    reader.close()
    assert counts["pending"] == 1 and counts["retrying"] == 1
    assert counts["delivered"] == 1 and counts["dead"] == 1
    dashboard = Dashboard(console=Console(file=io.StringIO()))
    dashboard.update_outbox(counts, events)
    text = record(dashboard.state)
    assert queue(text) == {"pending": 1, "retrying": 1, "delivered": 1, "dead": 1}
    assert "open" in line_with(text, "door", "Fighting", "0.77")
    assert "end" in line_with(text, "door", "Explosion", "1m00s")


# --- Dashboard (Live) -------------------------------------------------------------------------


def test_dashboard_disabled_off_terminal_unless_forced() -> None:
    quiet = Dashboard(console=Console(file=io.StringIO()))
    assert not quiet.enabled and quiet.start() is False
    quiet.stop()
    assert not Dashboard(
        DashboardConfig(enabled=False), console=Console(force_terminal=True)
    ).enabled
    assert Dashboard(DashboardConfig(enabled="auto"), console=Console(force_terminal=True)).enabled
    out = io.StringIO()
    forced = Dashboard(
        console=Console(file=out, force_terminal=True, width=100, height=30),
        force=True,
        banner=DEMO_BANNER,
        cameras=["door"],
    )
    assert forced.enabled
    with forced:
        forced.update_heartbeat(
            parse_heartbeat(wire("capture:door", capture_fields("door", "online"), time.time()))
        )
        forced.refresh()
    drawn = out.getvalue()
    assert DEMO_BANNER in drawn and "door" in drawn and "online" in drawn


# --- the real thing: a Live process in tmux, fed over ZeroMQ from this process ----------------


def _tmux(server: str, *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["tmux", "-L", server, "-f", "/dev/null", *args],
        capture_output=True,
        text=True,
        timeout=10,
        env=env,
    )


@pytest.fixture()
def tmux_server():
    require_tool("tmux", "tmux")
    server = f"vadmon-test-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    yield server
    _tmux(server, "kill-server")


def _pane(server: str) -> str:
    return _tmux(server, "capture-pane", "-p", "-t", "dash").stdout


def _has_rows(text: str, rows: list[tuple[str, ...]]) -> bool:
    """Each tuple's strings all on one line (so a header word cannot stand in for a row)."""
    lines = text.splitlines()
    return all(any(all(n in line for n in row) for line in lines) for row in rows)


def _wait_for_pane(server: str, rows: list[tuple[str, ...]], timeout_s: float, poke=None) -> str:
    deadline, text = time.monotonic() + timeout_s, ""
    while time.monotonic() < deadline:
        if poke is not None:
            poke()
        text = _pane(server)
        if _has_rows(text, rows):
            return text
        time.sleep(0.2)
    return text


def test_live_dashboard_in_tmux_fed_over_zeromq(
    tmux_server: str, subprocess_env: dict, tmp_path: Path
) -> None:
    endpoint = f"ipc://{tmp_path}/hb.sock"
    errors = tmp_path / "dashboard.err"
    env = {**subprocess_env, "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8"}
    command = (
        f"{sys.executable} -m vadmon.dashboard --listen {endpoint} --demo-banner"
        f" --cameras door,yard --refresh-hz 10 2> {errors}"
    )
    started = _tmux(
        tmux_server, "new-session", "-d", "-s", "dash", "-x", "100", "-y", "30", command, env=env
    )
    assert started.returncode == 0, started.stderr
    senders = {
        name: HeartbeatSender(endpoint, name)
        for name in ("capture:door", "capture:yard", "inference", "alerts")
    }
    cams = {"door": (0.87, "Fighting", 0.81), "yard": (0.12, "Normal", 0.93)}

    def poke() -> None:
        now = time.time()
        senders["capture:door"].beat(**capture_fields("door", "online"))
        senders["capture:yard"].beat(**capture_fields("yard", "stalled", fps=0.0))
        senders["inference"].beat(**inference_fields(cams, last_ts=now))
        senders["alerts"].beat(**alerts_fields(EVENTS))

    expected = [
        (DEMO_BANNER,),
        ("door", "online", "Fighting 0.81"),
        ("yard", "stalled", "Normal 0.93"),
        ("yard", "Road Accident"),
        ("delivered", "17"),
        ("capture:door", "alive"),
        ("capture:yard", "alive"),
        ("inference", "alive"),
    ]
    try:
        text = _wait_for_pane(tmux_server, expected, 20.0, poke)
    finally:
        for sender in senders.values():
            sender.close()
    detail = f"pane:\n{text}\nstderr:\n{errors.read_text() if errors.exists() else ''}"
    assert _has_rows(text, expected), detail
    lines = text.splitlines()
    assert lines[0].startswith("vadmon"), detail  # nothing scrolled off the top
    assert len(lines) <= 30 and max(cell_len(x) for x in lines) <= 100
    door = line_with(text, "door", "online")
    assert "0.87" in door and "Fighting 0.81" in door and "9.8" in door
    assert "0.12" in line_with(text, "yard", "stalled")
    assert queue(text) == {"pending": 4, "retrying": 2, "delivered": 17, "dead": 1}
    assert "alive" in line_with(text, "inference", "alive")

    # a second process: the synthetic feed, through the same socket
    feeder = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "vadmon.dashboard",
            "--demo-feed",
            endpoint,
            "--cameras",
            "demo-x",
        ],
        env=subprocess_env,
    )
    try:
        text = _wait_for_pane(tmux_server, [("demo-x", "online")], 20.0)
    finally:
        feeder.terminate()
        assert feeder.wait(timeout=10) == 0
    assert "online" in line_with(text, "demo-x"), text

    # Ctrl-C stops the viewer cleanly (the session ends with its only pane)
    _tmux(tmux_server, "send-keys", "-t", "dash", "C-c")
    deadline = time.monotonic() + 10
    while (
        time.monotonic() < deadline
        and _tmux(tmux_server, "has-session", "-t", "dash").returncode == 0
    ):
        time.sleep(0.1)
    assert _tmux(tmux_server, "has-session", "-t", "dash").returncode != 0, "viewer ignored Ctrl-C"
    assert "Traceback" not in errors.read_text()


# --- Prometheus -------------------------------------------------------------------------------


def scrape(port: int) -> dict[str, dict[tuple, float]]:
    """``{sample name: {sorted label items: value}}`` from a real HTTP scrape."""
    response = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5)
    assert response.status_code == 200
    out: dict[str, dict[tuple, float]] = {}
    for family in text_string_to_metric_families(response.text):
        for s in family.samples:
            out.setdefault(s.name, {})[tuple(sorted(s.labels.items()))] = s.value
    return out


def test_prometheus_metrics_over_http() -> None:
    state = example_state()
    exporter = PrometheusExporter(state)
    port = exporter.start(0)
    try:
        m = scrape(port)
    finally:
        exporter.stop()
    cam = lambda name: (("camera", name),)  # noqa: E731
    assert m["vadmon_camera_fps"][cam("door")] == 9.8
    assert m["vadmon_camera_fps"][cam("yard")] == 0.0
    assert m["vadmon_inference_fps"][cam("gate")] == 0.6
    assert m["vadmon_skipped_snippets_total"][cam("door")] == 7
    assert m["vadmon_reconnects_total"][cam("yard")] == 3
    assert m["vadmon_anomaly_score"][cam("door")] == 0.87
    # 5 score samples × 3 cameras at 42 ms, all in the 0.05 s bucket
    assert m["vadmon_inference_latency_seconds_count"][()] == 15
    assert m["vadmon_inference_latency_seconds_bucket"][(("le", "0.025"),)] == 0
    assert m["vadmon_inference_latency_seconds_bucket"][(("le", "0.05"),)] == 15
    assert m["vadmon_alert_latency_seconds_count"][()] == 2
    assert m["vadmon_alert_latency_seconds_sum"][()] == pytest.approx(0.2)
    assert m["vadmon_alert_latency_seconds_bucket"][(("le", "0.1"),)] == 1
    deliveries = m["vadmon_webhook_deliveries_total"]
    assert deliveries[(("status", "delivered"),)] == 17 and deliveries[(("status", "dead"),)] == 1
    assert m["vadmon_webhook_queue"][(("status", "retrying"),)] == 2
    restarts = m["vadmon_process_restarts_total"]
    assert restarts[(("process", "alerts"),)] == 5
    assert restarts[(("process", "capture:yard"),)] == 2
    assert restarts[(("process", "inference"),)] == 0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_exporters_have_private_registries_and_follow_the_state() -> None:
    first, second = DashboardState(), DashboardState()
    feed(first, "inference", inference_fields({"door": (0.3, "Normal", 0.9)}, NOW))
    feed(second, "inference", inference_fields({"yard": (0.6, "Fighting", 0.7)}, NOW))
    a = start_exporter(MetricsConfig(prometheus_port=_free_port()), first)
    b = PrometheusExporter(second)
    assert a is not None and start_exporter(MetricsConfig(), first) is None
    try:
        b.start(0)
        assert scrape(a.port)["vadmon_anomaly_score"] == {(("camera", "door"),): 0.3}
        assert scrape(b.port)["vadmon_anomaly_score"] == {(("camera", "yard"),): 0.6}
        feed(first, "inference", inference_fields({"door": (0.95, "Fighting", 0.8)}, NOW + 1))
        assert scrape(a.port)["vadmon_anomaly_score"][(("camera", "door"),)] == 0.95
        with pytest.raises(VadmonError, match="cannot serve metrics"):
            PrometheusExporter(first).start(a.port)
    finally:
        a.stop()
        b.stop()


def test_events_held_back_by_cooldown_are_shown() -> None:
    """A recurring anomaly inside cooldown_s raises no event; the events panel says so."""
    state = example_state()
    text = record(state)
    assert "cooldown" not in text
    fields = alerts_fields(EVENTS)
    fields["counters"]["suppressed_cooldown"] = 3
    feed(state, "alerts", fields)
    text = record(state)
    assert_fits(text)
    assert "recent events (+3 held back by cooldown)" in line_with(text, "recent events")
