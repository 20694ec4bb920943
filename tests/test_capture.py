"""The capture process end to end: real subprocesses, real sockets, a real RTSP server."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import cv2
import numpy as np
import pytest

from tests.capture_support import (
    Capture,
    RtspServer,
    capture_runs,
    free_port,
    rss_kib,
    rtsp_servers,
    shm_names,
    wait_for,
)
from vadmon.runtime.ring import RingReader


@pytest.fixture()
def capture(subprocess_env: dict[str, str]) -> Iterator[Callable[..., Capture]]:
    yield from capture_runs(subprocess_env)


@pytest.fixture()
def rtsp_server(vtest_path: Path) -> Iterator[Callable[..., RtspServer]]:
    yield from rtsp_servers(vtest_path)


# stall after 2 s, reconnect within 0.2-2 s, give up opening after 4 s (connecting: 8 s)
FAST_RETRY = {
    "stall_timeout_s": 2, "backoff_initial_s": 0.2, "backoff_max_s": 2,
    "open_timeout_s": 4, "read_timeout_s": 2,
}  # fmt: skip


def test_synthetic_capture_publishes_everything_and_cleans_up(
    capture: Callable[..., Capture],
) -> None:
    run = capture("cam1", "synthetic:w=160&h=120&fps=20")
    assert wait_for(lambda: len(run.snippets) >= 2 and run.previews, 20), run.output()
    assert run.wait_state({"online"}, 5)
    snippet = run.snippets[-1]
    assert (snippet.height, snippet.width, snippet.channels) == (120, 160, 3)
    with RingReader(snippet.ring) as reader:
        frame = reader.read(snippet.slots[0], snippet.seqs[0])
    assert frame is not None and frame.shape == (120, 160, 3)
    preview, jpeg = run.previews[-1]
    image = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
    assert image.shape == (preview.height, preview.width, 3)
    # snippets held until this consumer connected arrive at once: the rate needs its window
    assert wait_for(lambda: (run.last().counters.fps or 0) > 0, 10), run.output()  # None at first
    status = run.last()
    assert status.camera == "cam1" and status.counters.frames_total > 0
    assert status.info.source == "synthetic"
    assert status.counters.source_fps == pytest.approx(20) and status.info.ring == snippet.ring
    pid = run.proc.pid
    assert shm_names(pid)
    assert run.stop() == 0, run.output()
    assert shm_names(pid) == [], "SIGTERM must unlink the ring"
    assert not list(run.directory.glob("*.sock")), "ipc files must be removed"
    assert run.recv_stats.malformed == 0


def test_slow_consumer_memory_flat_and_drops_counted(capture: Callable[..., Capture]) -> None:
    """Nobody reads snippets: sends fail fast, drops are counted, memory does not grow."""
    run = capture(
        "slow",
        "synthetic:w=640&h=480&fps=100",
        read_snippets=False,
        model={"snippet_frames": 1},
    )
    # a consumer that connects and never reads
    import zmq

    from vadmon.capture.setup import capture_endpoints
    from vadmon.runtime.transport import puller, subscriber

    ctx = zmq.Context()
    endpoints = capture_endpoints(run.directory, "slow")
    stuck_pull = puller(ctx, endpoints.snippets)
    stuck_sub = subscriber(ctx, endpoints.publish)
    try:
        assert wait_for(lambda: run.state == "online", 20), run.output()
        # Progress, not time: drops start once the stuck queue is full, and memory is compared
        # across the next 500 dropped snippets (about 5 s at 100 fps), however loaded the host.
        # the first 100 drops warm up (ring, queues, allocator): measured from there on
        assert wait_for(lambda: run.last().counters.snippet_drops_total >= 100, 60), run.output()
        early = rss_kib(run.proc.pid)
        early_drops = run.last().counters.snippet_drops_total
        more = early_drops + 500
        assert wait_for(lambda: run.last().counters.snippet_drops_total >= more, 90), run.output()
        late = rss_kib(run.proc.pid)
        status = run.last()
        assert status.counters.snippet_drops_total > early_drops > 0
        assert status.counters.snippets_sent < status.counters.snippets_total
        assert late - early < 20 * 1024, f"RSS grew from {early} to {late} KiB"
        assert run.alive()
    finally:
        stuck_pull.close(linger=0)
        stuck_sub.close(linger=0)
        ctx.term()


def test_log_level_comes_from_the_config(capture: Callable[..., Capture]) -> None:
    """``log_level`` reaches the capture process: info logs the connection, warning does not."""
    runs = {
        level: capture(f"log{level}", "synthetic:w=64&h=48&fps=20", log_level=level)
        for level in ("info", "warning")
    }
    for run in runs.values():
        assert run.wait_state({"online"}, 20), run.output()
        assert run.stop() == 0, run.output()
    assert "INFO camera loginfo: connecting to synthetic" in runs["info"].output()
    assert "INFO" not in runs["warning"].output(), runs["warning"].output()


def test_bad_source_spec_is_one_error_line(capture: Callable[..., Capture]) -> None:
    run = capture("bad", "ftp://example/stream")
    assert wait_for(lambda: not run.alive(), 20)
    assert run.proc.returncode == 2
    lines = [line for line in run.output().splitlines() if line.strip()]
    assert len(lines) == 1 and "unsupported URL scheme" in lines[0], lines


# --- RTSP against a real server ---------------------------------------------------------------


@pytest.mark.slow
def test_rtsp_online_server_killed_and_restarted(
    capture: Callable[..., Capture], rtsp_server: Callable[..., RtspServer]
) -> None:
    server = rtsp_server()
    run = capture("door", server.url(), FAST_RETRY)
    assert run.wait_state({"online"}, 30), run.output()
    assert wait_for(lambda: len(run.snippets) >= 1, 20), run.output()
    assert (run.snippets[-1].height, run.snippets[-1].width) == (576, 768)
    assert run.last().counters.source_fps == pytest.approx(10, abs=1)
    server.kill()
    assert run.wait_state({"stalled", "offline"}, 15), run.output()
    server.start()
    before = run.last().counters.reconnects_total
    assert run.wait_state({"online"}, 40), run.output()
    assert run.last().counters.reconnects_total >= max(before, 1)
    count = len(run.snippets)
    assert wait_for(lambda: len(run.snippets) > count, 20)
    assert run.stop() == 0, run.output()


@pytest.mark.slow
def test_rtsp_refused_connection_retries_with_backoff(capture: Callable[..., Capture]) -> None:
    port = free_port()  # nothing listens here
    run = capture("nobody", f"rtsp://127.0.0.1:{port}/test", FAST_RETRY)
    assert wait_for(lambda: run.statuses and run.last().counters.reconnects_total >= 2, 30)
    status = run.last()
    assert status.state in {"offline", "connecting"}
    assert status.info.errors.get("refused", 0) >= 2, status.info
    assert run.alive()


@pytest.mark.slow
def test_rtsp_auth_wrong_password_then_right_one_never_logged(
    capture: Callable[..., Capture], rtsp_server: Callable[..., RtspServer]
) -> None:
    password = "p@ss:w%rd/x"
    server = rtsp_server(user="bob", password=password)
    wrong = capture("wrong", server.url(password="n0t:it@all"), FAST_RETRY)
    right = capture("right", server.url(), FAST_RETRY)
    assert right.wait_state({"online"}, 30), right.output()
    assert wait_for(lambda: wrong.statuses and wrong.last().info.errors.get("auth", 0) >= 1, 30)
    assert wrong.state != "online"
    assert wrong.stop() == 0 and right.stop() == 0
    for run, secret in ((wrong, "n0t:it@all"), (right, password)):
        text = run.output()
        assert "rtsp://***@127.0.0.1" in text, text  # the redacted URL is logged...
        for spelling in (secret, server.url(password=secret).split("@")[0].split(":")[-1]):
            assert spelling not in text, f"secret leaked in {run.camera} output"
        for status in run.statuses:
            assert secret not in repr(status)


class JunkServer:
    """A TCP server that answers every connection with garbage, then hangs up."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.connections = 0
        self._stop = threading.Event()
        self.sock.settimeout(0.2)
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        rng = np.random.default_rng(0)
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            self.connections += 1
            with conn:
                try:
                    conn.sendall(b"HTTP/9.9 ???\r\n" + rng.bytes(4096))
                    time.sleep(0.3)
                except OSError:
                    pass

    def close(self) -> None:
        self._stop.set()
        self.thread.join(timeout=5)
        self.sock.close()


@pytest.fixture()
def junk_server() -> Iterator[JunkServer]:
    server = JunkServer()
    yield server
    server.close()


@pytest.mark.slow
def test_rtsp_garbage_on_the_port_reconnects_and_never_crashes(
    capture: Callable[..., Capture], junk_server: JunkServer
) -> None:
    run = capture("junk", f"rtsp://127.0.0.1:{junk_server.port}/x", FAST_RETRY)
    assert wait_for(lambda: run.statuses and run.last().counters.reconnects_total >= 2, 45), (
        run.output()
    )
    assert junk_server.connections >= 2
    status = run.last()
    assert status.state != "online" and run.alive()
    errors = status.info.errors
    assert errors and set(errors) <= {"codec", "timeout", "refused", "unknown"}, errors
    assert "Traceback" not in run.output()
    assert run.stop() == 0, run.output()


def test_rtsp_test_server_streams_the_video_and_enforces_credentials(
    rtsp_server: Callable[..., RtspServer],
) -> None:
    """The server the RTSP tests rely on: real frames of vtest.avi, refused without a password."""
    server = rtsp_server(user="eve", password="s3cret")
    frames = []
    cap = cv2.VideoCapture(server.url(), cv2.CAP_FFMPEG)
    try:
        for _ in range(3):
            ok, frame = cap.read()
            if ok:
                frames.append(frame)
    finally:
        cap.release()
    assert frames and frames[0].shape == (576, 768, 3)
    anonymous = cv2.VideoCapture(server.url(user="", password=""), cv2.CAP_FFMPEG)
    try:
        assert not anonymous.isOpened() or not anonymous.read()[0]
    finally:
        anonymous.release()
