"""Link previews: bounded backlog over an outage, oldest first after it, snippets take precedence."""

from __future__ import annotations

import time

import numpy as np
import zmq
from monitor_support import short_dir

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
    time.sleep(0.3)
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
    time.sleep(0.3)
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
