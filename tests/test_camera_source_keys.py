"""Camera source keys and RTSP credentials against real parts: the RTSP server of
tests/rtsp_server.py, capture processes started from a config file, real video files.

- ``${ENV}`` user/password are percent-encoded into the URL: a password with ``@ : / %``
  streams; the logs mask exactly the secret (not every letter ``p``).
- the failed-open probe sends no pre-emptive credentials (a TCP recorder sits in between).
- ``rtsp_transport`` is what FFmpeg asks the server for (SETUP ``Transport:``).
- ``realtime`` paces a file at its fps (or not); ``loop: false`` ends the camera at the end of
  the file instead of replaying it.
"""

from __future__ import annotations

import base64
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import cv2
import numpy as np
import pytest
from tcp_recorder import TcpRecorder

from tests.capture_support import Capture, RtspServer, capture_runs, rtsp_servers, wait_for
from vadmon.capture.probe import classify_stream_failure
from vadmon.capture.setup import build_source
from vadmon.capture.source import ErrorKind
from vadmon.config import MonitorConfig, load_config_text
from vadmon.dashboard.state import DashboardState
from vadmon.runtime.heartbeat import TOPIC, encode, parse_heartbeat
from vadmon.settings import capture_settings

PASSWORD = "p@ss:w/rd%"
ENCODED = "p%40ss%3Aw%2Frd%25"


@pytest.fixture()
def capture(subprocess_env: dict[str, str]) -> Iterator[Callable[..., Capture]]:
    yield from capture_runs(subprocess_env)


@pytest.fixture()
def rtsp_server(vtest_path: Path) -> Iterator[Callable[..., RtspServer]]:
    yield from rtsp_servers(vtest_path)


FAST = {"open_timeout_s": 3, "read_timeout_s": 2, "stall_timeout_s": 2,
        "backoff_initial_s": 0.2, "backoff_max_s": 1}  # fmt: skip


# --------------------------------------------------------------------------- credentials


def test_env_credentials_are_percent_encoded_into_the_url_only() -> None:
    text = """
cameras:
  door: {source: "rtsp://${CAM_USER}:${CAM_PASS}@cam.example:8554/${STREAM}?x=1"}
model: {mode: vadclip, checkpoint: x.pt}
"""
    env = {"CAM_USER": "ad min", "CAM_PASS": PASSWORD, "STREAM": "live/main"}
    cfg = load_config_text(text, "t.yaml", env)
    assert cfg.cameras["door"].source == (
        f"rtsp://ad%20min:{ENCODED}@cam.example:8554/live/main?x=1"
    )
    assert PASSWORD in cfg.secret_values() and ENCODED in cfg.secret_values()
    assert PASSWORD not in repr(cfg) and ENCODED not in repr(cfg)


def test_capture_streams_with_a_password_full_of_url_characters(
    capture: Callable[..., Capture],
    rtsp_server: Callable[..., RtspServer],
    tmp_path: Path,
    subprocess_env: dict[str, str],
) -> None:
    server = rtsp_server(user="cam", password=PASSWORD)
    subprocess_env.update(CAM_USER="cam", CAM_PASS=PASSWORD)  # the capture process's env
    source = f"rtsp://${{CAM_USER}}:${{CAM_PASS}}@127.0.0.1:{server.port}/test"
    run = capture("door", source, FAST, False)
    assert run.wait_state({"online"}, 30), run.output()
    assert wait_for(lambda: len(run.previews) > 3, 20), run.output()
    out = run.output()
    assert "Port missing" not in out and PASSWORD not in out and ENCODED not in out
    assert "capture:door" in out, out  # the letter p is not masked everywhere


def test_raw_password_in_a_url_does_not_scramble_the_logs(
    capture: Callable[..., Capture], rtsp_server: Callable[..., RtspServer]
) -> None:
    server = rtsp_server(user="cam", password=PASSWORD)
    raw = f"rtsp://cam:{PASSWORD}@127.0.0.1:{server.port}/test"  # pasted, not encoded
    run = capture("door", raw, FAST, False)
    assert wait_for(lambda: "connecting to" in run.output(), 20), run.output()
    time.sleep(2)
    out = run.output()
    assert "capture:door" in out and "ca***ture" not in out, out
    assert "w/rd%" not in out, out


def test_failed_open_probe_sends_no_preemptive_credentials(
    rtsp_server: Callable[..., RtspServer],
) -> None:
    secured = rtsp_server(user="cam", password=PASSWORD)
    basic = base64.b64encode(f"cam:{PASSWORD}".encode())
    with TcpRecorder(secured.port) as rec:
        url = f"rtsp://cam:{ENCODED}@127.0.0.1:{rec.port}/nope"
        assert classify_stream_failure(url, 5)[0] is ErrorKind.NOT_FOUND
        first = rec.sent().split(b"\r\n\r\n")[0]
    assert b"DESCRIBE" in first and b"Authorization" not in first
    with TcpRecorder(secured.port) as rec:
        url = f"rtsp://cam:wrong-password@127.0.0.1:{rec.port}/test"
        assert classify_stream_failure(url, 5)[0] is ErrorKind.AUTH
        assert b"Authorization" not in rec.sent().split(b"\r\n\r\n")[0]
    open_server = rtsp_server()  # no authentication: credentials must never be sent
    with TcpRecorder(open_server.port) as rec:
        url = f"rtsp://cam:{ENCODED}@127.0.0.1:{rec.port}/nope"
        assert classify_stream_failure(url, 5)[0] is ErrorKind.NOT_FOUND
        sent = rec.sent()
    assert b"Authorization" not in sent and basic not in sent
    assert PASSWORD.encode() not in sent and ENCODED.encode() not in sent


# --------------------------------------------------------------------------- rtsp_transport


@pytest.mark.parametrize(("transport", "wire"), [("tcp", b"RTP/AVP/TCP"), ("udp", b"client_port=")])
def test_rtsp_transport_is_what_ffmpeg_asks_for(
    capture: Callable[..., Capture],
    rtsp_server: Callable[..., RtspServer],
    tmp_path: Path,
    transport: str,
    wire: bytes,
) -> None:
    server = rtsp_server()
    with TcpRecorder(server.port) as rec:
        source = f"rtsp://127.0.0.1:{rec.port}/test"
        run = capture("door", source, {**FAST, "rtsp_transport": transport}, False)
        assert run.wait_state({"online"}, 30), run.output()
        setup = [line for line in rec.sent().split(b"\r\n") if line.startswith(b"Transport:")]
    assert setup and all(wire in line for line in setup), setup
    if transport == "udp":
        assert not any(b"/TCP" in line for line in setup)


# --------------------------------------------------------------------------- files


def file_config(path: Path, extra: str) -> MonitorConfig:
    text = f"""
cameras:
  door: {{source: "{path}" {extra}}}
model: {{mode: vadclip, checkpoint: x.pt}}
"""
    return load_config_text(text, "t.yaml", {})


def read_seconds(cfg: MonitorConfig, frames: int) -> float:
    source = build_source(capture_settings(cfg, "door"))
    source.open()
    try:
        start = time.monotonic()
        for _ in range(frames):
            source.read()
        return time.monotonic() - start
    finally:
        source.close()


def test_realtime_paces_a_file_at_its_fps(vtest_path: Path) -> None:
    fps = cv2.VideoCapture(str(vtest_path)).get(cv2.CAP_PROP_FPS)
    frames = 21
    paced = read_seconds(file_config(vtest_path, ", realtime: true"), frames)
    assert paced >= (frames - 1) / fps * 0.95  # sleeps guarantee this lower bound
    fast = read_seconds(file_config(vtest_path, ", realtime: false"), frames)
    assert fast < paced / 3, (fast, paced)


def short_video(path: Path, frames: int = 8, fps: float = 10.0) -> Path:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, (64, 48))
    for i in range(frames):
        writer.write(np.full((48, 64, 3), 20 * i, np.uint8))
    writer.release()
    return path


@pytest.mark.parametrize("loop", [False, True])
def test_loop_false_ends_the_camera_at_the_end_of_the_file(
    capture: Callable[..., Capture], tmp_path: Path, loop: bool
) -> None:
    video = short_video(tmp_path / "short.avi")
    run = capture("door", str(video), {**FAST, "loop": loop}, False)
    if loop:
        assert wait_for(lambda: run.statuses and run.last().counters.frames_total > 20, 30)
        assert run.state == "online"
        return
    assert run.wait_state({"ended"}, 30), run.output()
    frames = run.last().counters.frames_total
    time.sleep(3)  # longer than the reconnect backoff: nothing restarts
    last = run.last()
    assert last.state == "ended" and last.counters.frames_total == frames <= 8
    assert last.counters.reconnects_total == 0 and run.alive()
    # the same body, as the supervisor feeds it to the dashboard: the ended camera keeps its
    # counters there (it used to be rejected whole: "state: Input should be ...")
    dash = DashboardState(cameras=["door"])
    dash.update_heartbeat(parse_heartbeat([TOPIC, encode("capture:door", last)]), now=time.time())
    (door,) = dash.view(time.time()).cameras
    assert door.state == "ended" and door.frames_total == frames


@pytest.mark.parametrize(("level", "shown"), [("info", True), ("warning", False)])
def test_log_level_reaches_the_capture_process(
    capture: Callable[..., Capture], tmp_path: Path, level: str, shown: bool
) -> None:
    run = capture("door", "synthetic:w=64&h=48&fps=10", FAST, False, log_level=level)
    assert run.wait_state({"online"}, 30), run.output()
    assert ("connecting to synthetic" in run.output()) is shown, run.output()
