"""Link previews: bounded backlog over an outage, oldest first after it, snippets take precedence."""

from __future__ import annotations

import time

import numpy as np
import zmq
from monitor_support import short_dir
from wait_support import wait_for

from vadmon.capture.preview_link import QUIET_AFTER_DROP_S, LinkPreviews
from vadmon.runtime.link import LinkPreviewSettings, relay_preview
from vadmon.runtime.messages import PreviewFrame, decode


def sockets(ctx: zmq.Context, endpoint: str, hwm: int = 100) -> zmq.Socket:
    push = ctx.socket(zmq.PUSH)
    push.setsockopt(zmq.LINGER, 0)
    push.setsockopt(zmq.IMMEDIATE, 1)  # as on the real link: no queue without a peer
    push.setsockopt(zmq.SNDHWM, hwm)
    push.connect(endpoint)
    return push


def drain(pull: zmq.Socket, timeout_s: float = 3.0) -> list[PreviewFrame]:
    got, end = [], time.monotonic() + timeout_s
    while time.monotonic() < end:
        if pull.poll(100):
            got.append(decode(pull.recv_multipart())[0])
            end = time.monotonic() + 0.5
    return got


def test_outage_backlog_is_bounded_and_sent_oldest_first_after_reconnect():
    ctx = zmq.Context()
    endpoint = f"ipc://{short_dir()}/link.sock"
    push = sockets(ctx, endpoint)
    link = LinkPreviews("door", LinkPreviewSettings(fps=1000, max_width=64, jpeg_quality=70,
                                                    buffer_s=2.0))  # fmt: skip
    frame = np.full((120, 160, 3), 200, np.uint8)
    now = time.monotonic()
    t_wall = time.time()
    for i in range(40):  # 4 s of previews while nobody listens
        link.last_offer = -1e9
        link.offer(frame, i, t_wall - 4.0 + i * 0.1, now + i)
        assert link.flush(push, now + i) == 0
    assert link.counters["link_previews_dropped"] >= 15  # older than buffer_s: dropped, counted
    assert len(link.backlog) <= 21
    pull = ctx.socket(zmq.PULL)
    pull.bind(endpoint)
    assert wait_for(lambda: push.poll(0, zmq.POLLOUT), 5)  # IMMEDIATE: writable once connected
    sent = 0
    deadline = time.monotonic() + 5
    while link.backlog and time.monotonic() < deadline:
        sent += link.flush(push, time.monotonic())
        time.sleep(0.01)
    got = drain(pull)
    seqs = [m.seq for m in got]
    assert seqs == sorted(seqs) and len(seqs) == sent >= 15
    assert got[0].width == 64 and got[0].height == 48  # downscaled to max_width
    assert link.counters["link_preview_bytes"] > 0
    push.close()
    pull.close()
    ctx.term()


def test_a_refused_snippet_holds_previews_back():
    ctx = zmq.Context()
    endpoint = f"ipc://{short_dir()}/link.sock"
    pull = ctx.socket(zmq.PULL)
    pull.bind(endpoint)
    push = sockets(ctx, endpoint)
    assert wait_for(lambda: push.poll(0, zmq.POLLOUT), 5)  # IMMEDIATE: writable once connected
    link = LinkPreviews("door", LinkPreviewSettings(2.0, 64, 70, 30.0))
    now = time.monotonic()
    link.offer(np.zeros((48, 64, 3), np.uint8), 1, time.time(), now)
    link.offer(np.zeros((48, 64, 3), np.uint8), 2, time.time(), now + 0.1)  # not due at 2 fps
    assert len(link.backlog) == 1
    link.snippet_refused(now)
    assert link.flush(push, now + 0.5) == 0
    assert link.flush(push, now + QUIET_AFTER_DROP_S + 0.1) == 1
    assert [m.seq for m in drain(pull)] == [1]
    push.close()
    pull.close()
    ctx.term()


def test_relay_passes_only_jpegs_of_sane_size():
    ctx = zmq.Context()
    endpoint = f"ipc://{short_dir()}/pub.sock"
    pub = ctx.socket(zmq.PUB)
    pub.bind(endpoint)
    msg = PreviewFrame("door", 1, time.time(), 48, 64)
    assert not relay_preview(pub, msg, None)
    assert not relay_preview(pub, msg, b"GIF89a not a jpeg")
    assert not relay_preview(pub, msg, b"\xff\xd8\xff" + b"\0" * (1 << 20))
    assert relay_preview(pub, msg, memoryview(b"\xff\xd8\xff\xe0 tiny jpeg"))
    pub.close()
    ctx.term()


def test_link_preview_keys_set_rate_width_and_quality(tmp_path):
    """transport.tcp.preview_* reach the capture side's link previews and change what is sent."""
    from explain_support import write_config

    from vadmon.config import load_config
    from vadmon.settings import link_client

    def previews(extra: str) -> LinkPreviews:
        (tmp_path / "k").mkdir(exist_ok=True)
        transport = (
            "transport:\n  tcp: {connect: 'tcp://127.0.0.1:5999'" + extra + "}\n"
            f"  curve: {{client_secret_file: {tmp_path}/k/c.key_secret, "
            f"server_public_file: {tmp_path}/k/s.key}}\n"
        )
        cfg = load_config(write_config(tmp_path, transport))
        return LinkPreviews("door", link_client(cfg).previews)

    rng = np.random.default_rng(0)
    frame = rng.integers(0, 255, (480, 640, 3), dtype=np.uint8)
    sizes = {}
    for name, extra in {
        "default": "",
        "fast": ", preview_fps: 8",
        "narrow": ", preview_max_width: 128",
        "low": ", preview_jpeg_quality: 20",
        "off": ", preview_fps: 0",
    }.items():
        link = previews(extra)
        for i in range(400):  # 4 s of frames from a 100 fps camera
            link.offer(frame, i, 1000.0 + i / 100, 1000.0 + i / 100)
        sizes[name] = (len(link.backlog), link.backlog[0].msg.width if link.backlog else 0,
                       len(link.backlog[0].jpeg) if link.backlog else 0)  # fmt: skip
    assert sizes["default"][0] in (7, 8) and sizes["default"][1] == 320  # 2 fps, 320 px wide
    assert sizes["fast"][0] in (31, 32) and sizes["narrow"][1] == 128  # 8 fps (±1 at the edge)
    assert sizes["low"][2] < sizes["default"][2] / 2
    assert sizes["off"] == (0, 0, 0)
