"""Dashboard: state from real heartbeat wire messages, rendering at 100×30, a real Live process
in tmux fed over ZeroMQ from another process, the SQLite outbox feed, and Prometheus /metrics."""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import cv2
import httpx
import numpy as np
import pytest
import zmq
from alerts_support import CALM, FIGHT, SECRET, Harness
from capture_support import capture_runs, free_port
from conftest import require_tool
from dashboard_support import (
    EVENTS,
    NOW,
    alerts_fields,
    capture_fields,
    example_state,
    feed,
    inference_fields,
    record,
    wire,
)
from monitor_support import write_config
from prometheus_client.parser import text_string_to_metric_families
from rich.cells import cell_len
from rich.console import Console
from webhook_receiver import Receiver

from vadmon.alerts.outbox import Outbox
from vadmon.config import DashboardConfig, MetricsConfig
from vadmon.dashboard.app import outbox_snapshot
from vadmon.dashboard.console import DEMO_BANNER, Dashboard, DashboardState, sparkline
from vadmon.dashboard.prometheus import PrometheusExporter, start_exporter
from vadmon.dashboard.render import MIN_HEIGHT, MIN_WIDTH
from vadmon.errors import VadmonError
from vadmon.runtime.child import ChildStatus
from vadmon.runtime.heartbeat import (
    ENV_ENDPOINT,
    ENV_NAME,
    HeartbeatSender,
    parse_heartbeat,
)
from vadmon.runtime.logs import ENV_FORMAT
from vadmon.runtime.status_schema import (
    body_model,
)

# --- heartbeat builders: every key is one the schema knows (``wire`` checks) -------------------


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
    assert "Fighting 0.81" in door  # over the threshold: the label shows
    # under the threshold the label column stays blank: "Normal 0.93" is no news
    assert "Normal" not in text
    yard = line_with(text, "yard", "stalled", "0.12")
    assert "timeout, retry in 4 s: no frame" in yard  # why it is not online
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
    assert text.rstrip().splitlines()[-1].startswith("Ctrl-C stop")  # the key hint line


def test_no_banner_line_without_banner() -> None:
    text = record(example_state(banner=None))
    assert "PIPELINE DEMO" not in text
    assert "door" in text.splitlines()[2]  # header, column titles, first camera


def test_more_cameras_than_rows_collapse_into_more_line() -> None:
    state = DashboardState(banner=DEMO_BANNER)
    names = [f"cam{i:02d}" for i in range(40)]
    for i, name in enumerate(names):
        feed(state, f"capture:{name}", capture_fields(name, "offline" if i >= 35 else "online"))
    feed(state, "inference", inference_fields({n: (0.2, "Normal", 0.9) for n in names}))
    feed(state, "alerts", alerts_fields(EVENTS))
    text = record(state)
    assert_fits(text)
    shown = [n for n in names if n in text]
    assert 5 <= len(shown) < 40
    more = line_with(text, "more")
    assert f"+{40 - len(shown)} more" in more
    assert "(5 offline/stalled)" in more  # the hidden tail holds the five offline cameras
    assert queue(text)["pending"] == 4  # the bottom panels still fit


def test_terminal_sizes_too_small_small_and_large() -> None:
    state = example_state()
    tiny = record(state, width=60, height=15)
    assert tiny.strip() == f"terminal too small (need {MIN_WIDTH}x{MIN_HEIGHT}, have 60x15)"
    small = record(state, width=MIN_WIDTH, height=MIN_HEIGHT)
    assert_fits(small, MIN_WIDTH, MIN_HEIGHT)
    assert "door" in small
    # 160x50: a longer sparkline, and more events than fit at 100x30
    history = [k / 120 for k in range(120)]
    many = [
        {**EVENTS[1], "id": f"e{i}", "start": NOW - 100 * i, "label": f"Label{i}"}
        for i in range(10)
    ]
    for big in (DashboardState(), DashboardState()):
        feed(big, "capture:door", capture_fields("door", "online"))
        feed(big, "inference", inference_fields({"door": (0.99, "Fighting", 0.9)}, history))
        feed(big, "alerts", alerts_fields(many))
    texts = {size: record(big, width=size[0], height=size[1]) for size in ((100, 30), (160, 50))}
    assert_fits(texts[(160, 50)], 160, 50)
    sparks = {
        size: len(re.findall("[▁▂▃▄▅▆▇█]", line_with(t, "door", "online")))
        for size, t in texts.items()
    }
    assert sparks[(160, 50)] > sparks[(100, 30)] >= 10, sparks
    events = {size: sum(f"Label{i}" in t for i in range(10)) for size, t in texts.items()}
    assert events[(160, 50)] == 10 and events[(100, 30)] >= 5, events


def test_webhooks_panel_says_none_configured() -> None:
    state = DashboardState()
    feed(state, "alerts", alerts_fields([], hooks=0))
    assert "none configured" in line_with(record(state), "│", "none configured")
    configured = DashboardState(webhooks=2)
    assert "none configured" not in record(configured)


def test_silent_capture_or_down_process_shows_offline_with_reason() -> None:
    state = example_state()
    assert state.view(NOW).cameras[0].state == "online"
    silent = {c.name: c for c in state.view(NOW + 60).cameras}["door"]
    assert silent.state == "offline" and silent.reason == "no heartbeat for 60 s"
    state.update_children(
        {"capture:door": ChildStatus("capture:door", state="backoff", last_exit="exit code 1")}
    )
    door = {c.name: c for c in state.view(NOW).cameras}["door"]
    assert door.state == "offline" and door.reason == "process backoff: exit code 1"
    assert "process backoff: exit code 1" in line_with(record(state), "door", "offline")
    assert "inference —" in record(state, now=NOW + 60)  # inference silent too


def test_score_history_is_every_snippet_the_child_reported() -> None:
    assert sparkline([0.0, 0.5, 1.0], 5) == "  ▁▅█"
    assert sparkline([0.1] * 100, 8) == "▁" * 8
    state = DashboardState()
    feed(state, "inference", inference_fields({"door": (0.99, "N", 0.9)}, [0.0, 0.3, 0.6, 0.99]))
    (door,) = state.view(NOW).cameras
    assert door.history == (0.0, 0.3, 0.6, 0.99)
    assert sparkline(door.history, 4) in line_with(record(state), "door")
    assert state.view(NOW).inference_latency.count == 5  # the child's histogram, not one sample


def test_invalid_bodies_change_nothing() -> None:
    state = DashboardState()
    for process, body in (
        ("capture:door", {"state": 5, "counters": "x", "info": ["y"]}),
        ("inference", {"info": {"cameras": {"door": {"score": "high", "fps": 1}}}}),
        ("inference", {"info": {"cameras": ["door"]}}),
        ("alerts", {"counters": {"pending": True}, "info": {"recent_events": [1, {"x": 1}]}}),
    ):
        hb = parse_heartbeat(wire(process, body))
        assert hb is not None and hb.body is None and hb.problem
        state.update_heartbeat(hb, now=NOW)
    assert state.view(NOW).cameras == ()  # nothing was guessed from a body that lied
    text = record(state)
    assert_fits(text)
    assert "no events yet" in text


def test_state_is_bounded_by_names() -> None:
    fixed = DashboardState(cameras=["door"])
    for i in range(300):
        feed(fixed, f"capture:cam{i}", capture_fields(f"cam{i}", "online"))
    assert [c.name for c in fixed.view(NOW).cameras] == ["door"]
    open_state = DashboardState()
    for i in range(300):
        feed(open_state, f"capture:cam{i}", capture_fields(f"cam{i}", "online"))
    assert len(open_state.view(NOW).cameras) == 256  # MAX_CAMERAS
    assert body_model("worker") is None


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
    dashboard.state.update_outbox(counts, events)
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
        forced.state.update_heartbeat(
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
        f" --cameras door,yard,demo-x --refresh-hz 10 2> {errors}"
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
        senders["capture:door"].beat(**capture_fields("door", "online"))
        senders["capture:yard"].beat(**capture_fields("yard", "stalled", fps=0.0))
        senders["inference"].beat(**inference_fields(cams))
        senders["alerts"].beat(**alerts_fields(EVENTS))

    expected = [
        (DEMO_BANNER,),
        ("door", "online", "Fighting 0.81"),
        ("yard", "stalled", "0.12"),
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
    feed(first, "inference", inference_fields({"door": (0.3, "Normal", 0.9)}))
    feed(second, "inference", inference_fields({"yard": (0.6, "Fighting", 0.7)}))
    a = start_exporter(MetricsConfig(prometheus_port=_free_port()), first)
    b = PrometheusExporter(second)
    assert a is not None and start_exporter(MetricsConfig(), first) is None
    try:
        b.start(0)
        assert scrape(a.port)["vadmon_anomaly_score"] == {(("camera", "door"),): 0.3}
        assert scrape(b.port)["vadmon_anomaly_score"] == {(("camera", "yard"),): 0.6}
        feed(first, "inference", inference_fields({"door": (0.95, "Fighting", 0.8)}))
        assert scrape(a.port)["vadmon_anomaly_score"][(("camera", "door"),)] == 0.95
        with pytest.raises(VadmonError, match="cannot serve metrics"):
            PrometheusExporter(first).start(a.port)
    finally:
        a.stop()
        b.stop()


# --- the real heartbeats of the real processes --------------------------------------------------


def _collect(pull: zmq.Socket, seconds: float, until=None) -> list:
    beats, deadline = [], time.monotonic() + seconds
    while time.monotonic() < deadline:
        if pull.poll(100):
            hb = parse_heartbeat(pull.recv_multipart())
            assert hb is not None
            beats.append(hb)
            if until is not None and until(beats):
                break
    return beats


def _pull(endpoint: str) -> tuple[zmq.Context, zmq.Socket]:
    ctx = zmq.Context()
    pull = ctx.socket(zmq.PULL)
    pull.setsockopt(zmq.LINGER, 0)
    pull.bind(endpoint)
    return ctx, pull


def test_real_capture_heartbeats_rate_state_reason_and_log_lines(subprocess_env) -> None:
    """Two real capture processes: a synthetic 10 fps camera and an RTSP camera nobody serves.
    Their heartbeats validate, the rate has no start-up burst, the refused one says why, and
    each logs one line per state change (JSON for the second)."""
    ipc = Path(tempfile.mkdtemp(prefix="vh-", dir="/tmp"))
    endpoint = f"ipc://{ipc}/hb"
    ctx, pull = _pull(endpoint)
    env = {**subprocess_env, ENV_ENDPOINT: endpoint}
    door_runs = capture_runs({**env, ENV_NAME: "capture:door"})
    gate_runs = capture_runs({**env, ENV_NAME: "capture:gate", ENV_FORMAT: "json"})
    try:
        door = next(door_runs)("door", "synthetic:w=64&h=48&fps=10")
        refused = f"rtsp://127.0.0.1:{free_port()}/x"
        gate = next(gate_runs)("gate", refused, {"backoff_initial_s": 0.3})

        def enough(beats: list) -> bool:
            door_fps = [b.body.counters.fps for b in beats if b.process == "capture:door"]
            gate_errors = [b.body.info.error for b in beats if b.process == "capture:gate"]
            return len(door_fps) >= 5 and door_fps[-1] is not None and any(gate_errors)

        beats = _collect(pull, 60, enough)
        assert enough(beats), [(b.process, b.body) for b in beats]
    finally:
        door_log, gate_log = door.output(), gate.output()
        for runs in (door_runs, gate_runs):
            with contextlib.suppress(StopIteration):
                next(runs)  # stops the process, removes its directory
        pull.close()
        ctx.term()
        shutil.rmtree(ipc, ignore_errors=True)
    assert all(b.body is not None and not b.problem for b in beats), beats
    door_fps = [b.body.counters.fps for b in beats if b.process == "capture:door"]
    assert door_fps[0] is None  # not "562 fps" from one frame after a few milliseconds
    rates = [f for f in door_fps if f is not None]
    assert max(rates) <= 15 and 5 <= rates[-1] <= 12, door_fps
    state = DashboardState(["door", "gate"])
    for hb in beats:
        state.update_heartbeat(hb)
    text = record(state, now=time.time())
    assert "online" in line_with(text, "door")
    gate_row = line_with(text, "gate")
    assert re.search(r"(connecting|offline) .*refused", gate_row), text
    assert re.search(r"capture:door INFO camera state online .*previous=connecting", door_log)
    records = [json.loads(x) for x in gate_log.splitlines() if x.startswith("{")]
    changes = [r for r in records if r["msg"].startswith("camera state")]
    assert changes and changes[0]["camera"] == "gate" and changes[0]["process"] == "capture:gate"
    assert any("refused" in r.get("reason", "") for r in changes), changes


def test_real_alert_heartbeats_count_every_delivery_and_log_events(subprocess_env) -> None:
    """The alert process's heartbeat carries the delivery-latency histogram (one observation
    per delivered webhook) and the process logs one line per event message."""
    with Receiver([SECRET]) as rx:
        h = Harness({**subprocess_env}, rx.url)  # its heartbeats come to h.status (PULL)
        try:
            h.start()
            base = time.time()
            jpeg = cv2.imencode(".jpg", np.full((144, 192, 3), 90, np.uint8))[1].tobytes()
            for k in range(10):
                for i in range(16 * k, 16 * (k + 1), 4):  # previews for the snapshot and clip
                    h.preview(i, base, jpeg)
                high = 2 <= k <= 5
                h.score(k, base, 0.9 if high else 0.1, FIGHT if high else CALM)
                time.sleep(0.05)
            delivered = rx.wait_for(2, timeout=60, ok_only=True)

            def settled(beats: list) -> bool:
                info = beats[-1].body.info
                return info.alert_latency is not None and info.alert_latency.count >= 2

            beats = _collect(h.status, 30, settled)
            h.proc.send_signal(signal.SIGTERM)
            log_text = h.proc.stderr.read().decode()
            assert h.proc.wait(20) == 0
        finally:
            h.close()
    last = beats[-1]
    assert last.body is not None and not last.problem
    hist = last.body.info.alert_latency
    assert hist.count == len(delivered) == last.body.counters.delivered
    assert 0 < hist.sum / hist.count < 10
    assert last.body.info.webhooks == 1  # the Harness configures one endpoint
    kinds = [e.kind for e in last.body.info.recent_events]
    assert "end" in kinds or "start" in kinds
    start_line = line_with(log_text, "event start")
    for needle in ("camera=lobby", "label=Fighting", "prob=", "score=0.9", "snapshot=", "event="):
        assert needle in start_line, start_line
    assert "event end" in log_text


def test_service_mode_json_lines_from_every_process(tmp_path: Path, subprocess_env) -> None:
    """``vadmon run --no-dashboard --log-format json``: the supervisor and its children write
    one JSON object per line; the inference process stops on an unreadable checkpoint, so the
    run ends by itself (exit 2) with that process's one error line."""
    checkpoint = tmp_path / "broken.pt"
    checkpoint.write_bytes(b"not a checkpoint")
    cfg = write_config(tmp_path / "m.yaml", {"door": "synthetic:w=64&h=48&fps=5"}, checkpoint)
    argv = [sys.executable, "-m", "vadmon", "run", "--config", str(cfg), "--no-dashboard"]
    proc = subprocess.run(
        [*argv, "--log-format", "json"],
        env=subprocess_env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    records = [json.loads(line) for line in lines]  # every line, the child's error line too
    errors = [r for r in records if r["msg"].startswith("vadmon inference: error:")]
    assert proc.returncode == 2 and len(errors) == 1, proc.stderr
    assert errors[0]["level"] == "error" and errors[0]["process"] == "inference"
    started = [r for r in records if r["process"] == "supervisor" and "started" in r["msg"]]
    assert {r["msg"].split()[1] for r in started} >= {"capture:door", "inference", "alerts"}
    assert all({"ts", "level", "msg", "logger"} <= set(r) for r in records)
    assert "Traceback" not in proc.stderr


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


def test_wide_view_shows_each_events_explanation() -> None:
    why = "Fighting (0.81; next riot 0.10); anomaly score peaked at 0.97 2.1 s after onset"
    events = [{**EVENTS[0], "text": why}, EVENTS[1]]
    state = example_state()
    feed(state, "alerts", alerts_fields(events, [0.1]))
    wide = record(state, width=160, height=50)
    assert_fits(wide, 160, 50)
    assert "why" in wide and "Fighting (0.81; next riot" in line_with(wide, "door", "update")
    narrow = record(state)  # 100×30: the columns that matter most keep their room
    assert "next riot" not in narrow


def test_inference_host_shows_remote_cameras_by_their_link() -> None:
    """Split mode: the inference host runs no capture; a camera's state is its link's."""
    state = DashboardState(cameras=["door", "gate"])
    state.update_children({p: ChildStatus(p, state="running") for p in ("inference", "alerts")})
    fields = inference_fields({"door": (0.2, "Normal", 0.9), "gate": (0.1, "Normal", 0.9)})
    fields["info"]["cameras"]["gate"]["last_ts"] = NOW - 60  # the link went quiet a minute ago
    feed(state, "inference", fields)
    views = {c.name: c for c in state.view(now=NOW + 1).cameras}
    assert (views["door"].state, views["door"].reason) == ("online", "")
    assert views["gate"].state == "offline"
    assert views["gate"].reason == "link: no snippets for 61 s"
    text = record(state, now=NOW + 1)
    assert "link: no snippets for 61 s" in line_with(text, "gate", "offline")
    fresh = DashboardState(cameras=["door"])
    fresh.update_children({"inference": ChildStatus("inference", state="running")})
    assert fresh.view(now=NOW).cameras[0].reason == "link: waiting for the capture host"
