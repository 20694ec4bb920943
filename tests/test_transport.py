"""ZeroMQ helpers against real sockets: hostile input, double binds, CURVE, zero-copy reuse."""

from __future__ import annotations

import json
import os
import socket
import stat
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import zmq

from vadmon.bench.zmq_frames import (
    FRAME_TOPICS,
    FrameHeader,
    FramePool,
    frame_from_payload,
    send_frame,
)
from vadmon.errors import VadmonError
from vadmon.runtime.messages import PreviewFrame
from vadmon.runtime.security import generate_keypair, start_authenticator
from vadmon.runtime.transport import (
    CurveClient,
    CurveServer,
    RecvStats,
    SendStats,
    SocketLimits,
    close_socket,
    ipc_dir,
    ipc_endpoint,
    make_ipc_dir,
    puller,
    pusher,
    recv_message,
    send_message,
)


@pytest.fixture()
def ctx() -> Iterator[zmq.Context]:
    context = zmq.Context()
    yield context
    context.destroy(linger=0)


@pytest.fixture()
def sock_dir() -> Iterator[Path]:
    # short path: ipc socket paths are limited to ~100 bytes
    import tempfile

    with tempfile.TemporaryDirectory(prefix="vt-", dir="/tmp") as d:
        yield ipc_dir(Path(d) / "ipc")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def status(n: int) -> PreviewFrame:
    """A small valid message numbered ``n``."""
    return PreviewFrame(camera="test", seq=n, ts=float(n), height=1, width=1)


def good_frame_parts() -> list[bytes]:
    header = FrameHeader(camera="c", seq=1, ts=1.0, slot=0, height=2, width=3, ring="")
    return header.to_parts(bytes(2 * 3 * 3))


def test_ipc_dir_is_private(tmp_path: Path, ctx: zmq.Context) -> None:
    """A directory vadmon makes is 0700 (and its own to remove); an existing one — maybe the
    user's own folder — is left as it is, and each socket file in it is 0600 instead."""
    made, created = make_ipc_dir(tmp_path / "new" / "ipc")
    assert created and stat.S_IMODE(made.stat().st_mode) == 0o700
    loose = tmp_path / "loose"
    loose.mkdir(mode=0o755)
    os.chmod(loose, 0o755)
    assert make_ipc_dir(loose) == (loose, False)
    assert stat.S_IMODE(loose.stat().st_mode) == 0o755
    sock = puller(ctx, ipc_endpoint(loose, "x"), do_bind=True)
    assert stat.S_IMODE((loose / "x.sock").stat().st_mode) == 0o600
    close_socket(sock, ipc_endpoint(loose, "x"))
    afile = tmp_path / "file"
    afile.write_text("x")
    with pytest.raises(VadmonError):
        ipc_dir(afile)


def test_malformed_messages_are_counted_and_receiver_keeps_running(
    ctx: zmq.Context, sock_dir: Path
) -> None:
    endpoint = ipc_endpoint(sock_dir, "malformed")
    limits = SocketLimits(hwm=100, max_msg_bytes=1024 * 1024)
    receiver = puller(ctx, endpoint, do_bind=True, limits=limits)
    sender = pusher(ctx, endpoint, do_bind=False, limits=SocketLimits(hwm=100))
    bad: list[list[bytes]] = [
        [b"status"],  # too few parts
        [b"status", b"{}", b"x", b"y"],  # too many parts
        [b"status", b"not json{"],  # header is not JSON
        [b"status", b"[1, 2]"],  # header not an object
        [b"nope", b"{}"],  # unknown topic
        [b"status", json.dumps({"process": 3, "ts": 1.0}).encode()],  # wrong field type
        # huge dimensions
        [b"frame", FrameHeader("c", 1, 1.0, 0, 100000, 100000, "r").header()],
        # payload size does not match the header's shape
        good_frame_parts()[:2] + [bytes(5)],
        # dtype that the buffer cannot be
        [b"frame", json.dumps({**json.loads(good_frame_parts()[1]), "dtype": "float64"}).encode()]
        + [bytes(18)],
        [b"frame", b'{"camera":"c","seq":1,"ts":NaN,"slot":0,"height":2,"width":3,"ring":""}'],
    ]
    for parts in bad:
        sender.send_multipart(parts)
    sender.send_multipart(good_frame_parts())
    stats = RecvStats()
    got = None
    deadline = time.monotonic() + 10
    while got is None and time.monotonic() < deadline:
        got = recv_message(receiver, 200, stats, topics=FRAME_TOPICS)
    assert got is not None, stats
    header, payload = got
    assert isinstance(header, FrameHeader)
    assert frame_from_payload(header, payload).shape == (2, 3, 3)
    assert stats.malformed == len(bad) and stats.received == 1

    # Oversize: libzmq drops the connection (MAXMSGSIZE); the receiver carries on and the
    # sender's next messages arrive after its automatic reconnect.
    sender.send_multipart([b"preview", b"{}", bytes(2 * 1024 * 1024)])
    ok = None
    deadline = time.monotonic() + 10
    n = 0
    while ok is None and time.monotonic() < deadline:
        send_message(sender, status(n))
        n += 1
        ok = recv_message(receiver, 100, stats, topics=FRAME_TOPICS)
    assert ok is not None and isinstance(ok[0], PreviewFrame)
    assert stats.malformed == len(bad), "the oversize message must never be delivered"
    sender.close(linger=0)
    receiver.close(linger=0)


BINDER = textwrap.dedent(
    """
    import sys, zmq
    from vadmon.runtime.transport import publisher
    ctx = zmq.Context()
    sock = publisher(ctx, sys.argv[1])
    print("BOUND", flush=True)
    sys.stdin.read()
    """
)


def test_second_bind_on_ipc_endpoint_fails_loudly(
    ctx: zmq.Context, sock_dir: Path, subprocess_env: dict[str, str]
) -> None:
    endpoint = ipc_endpoint(sock_dir, "capture-cam1")
    proc = subprocess.Popen(
        [sys.executable, "-c", BINDER, endpoint],
        env=subprocess_env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout.readline().strip() == "BOUND"
        with pytest.raises(VadmonError, match="already in use"):
            pusher(ctx, endpoint)
        # a second process trying the same endpoint dies loudly too
        res = subprocess.run(
            [sys.executable, "-c", BINDER, endpoint],
            env=subprocess_env,
            input="",
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert res.returncode != 0 and "already in use" in res.stderr
    finally:
        proc.communicate("", timeout=20)
    # The first process is gone; its socket file may remain but is stale: binding works.
    sock = pusher(ctx, endpoint)
    sock.close(linger=0)


def curve_setup(tmp_path: Path) -> tuple[CurveServer, CurveClient, CurveClient]:
    server_pub, server_secret = generate_keypair(tmp_path / "server", "server")
    _, good_secret = generate_keypair(tmp_path / "clients", "inference")
    _, bad_secret = generate_keypair(tmp_path / "strangers", "intruder")
    allowed = tmp_path / "allowed"
    allowed.mkdir()
    (allowed / "inference.key").write_bytes((tmp_path / "clients" / "inference.key").read_bytes())
    return (
        CurveServer(secret_key_file=server_secret, allowed_clients_dir=allowed),
        CurveClient(secret_key_file=good_secret, server_public_key_file=server_pub),
        CurveClient(secret_key_file=bad_secret, server_public_key_file=server_pub),
    )


def deliveries(receiver: zmq.Socket, sender: zmq.Socket, seconds: float) -> int:
    got = 0
    deadline = time.monotonic() + seconds
    n = 0
    while time.monotonic() < deadline and got == 0:
        send_message(sender, status(n))
        n += 1
        if recv_message(receiver, 100) is not None:
            got += 1
    return got


def test_curve_allows_known_client_and_refuses_others(ctx: zmq.Context, tmp_path: Path) -> None:
    server_cfg, good, stranger = curve_setup(tmp_path)
    auth = start_authenticator(ctx, server_cfg.allowed_clients_dir)
    endpoint = f"tcp://127.0.0.1:{free_port()}"
    receiver = puller(ctx, endpoint, do_bind=True, curve=server_cfg)
    try:
        plain = pusher(ctx, endpoint, do_bind=False)
        assert deliveries(receiver, plain, 2.0) == 0, "plaintext peer must be refused"
        plain.close(linger=0)
        unknown = pusher(ctx, endpoint, do_bind=False, curve=stranger)
        assert deliveries(receiver, unknown, 2.0) == 0, "unknown key must be refused"
        unknown.close(linger=0)
        known = pusher(ctx, endpoint, do_bind=False, curve=good)
        assert deliveries(receiver, known, 10.0) == 1
        known.close(linger=0)
    finally:
        receiver.close(linger=0)
        auth.stop()


def test_zero_copy_buffers_are_not_reused_while_in_flight(ctx: zmq.Context, sock_dir: Path) -> None:
    endpoint = ipc_endpoint(sock_dir, "frames")
    receiver = puller(ctx, endpoint, do_bind=True, limits=SocketLimits(hwm=4))
    sender = pusher(ctx, endpoint, do_bind=False, limits=SocketLimits(hwm=64))
    shape = (240, 320, 3)
    pool = FramePool(shape, max_buffers=4)
    total = 120
    received: list[tuple[int, bool]] = []
    start_reading = threading.Event()

    def read_all() -> None:
        start_reading.wait(10)
        deadline = time.monotonic() + 30
        while len(received) < total and time.monotonic() < deadline:
            got = recv_message(receiver, 100, topics=FRAME_TOPICS)
            if got is None:
                continue
            header, payload = got
            frame = frame_from_payload(header, payload)
            intact = bool((frame == header.seq % 251).all())
            received.append((header.seq, intact))
            time.sleep(0.002)  # slow consumer keeps buffers in flight

    reader = threading.Thread(target=read_all)
    reader.start()
    stats = SendStats()
    waited_for_buffer = 0
    try:
        for seq in range(total):
            buf = pool.acquire()
            deadline = time.monotonic() + 10
            while buf is None and time.monotonic() < deadline:
                waited_for_buffer += 1
                start_reading.set()
                time.sleep(0.001)
                buf = pool.acquire()
            assert buf is not None, "buffers never came back from libzmq"
            buf.fill(seq % 251)
            header = FrameHeader("c", seq, float(seq), 0, shape[0], shape[1], "")
            # a drop (peer not connected yet, queue full) returns the buffer; send it again
            deadline = time.monotonic() + 10
            while not send_frame(sender, header, buf, pool, stats):
                assert time.monotonic() < deadline, "sender never got a free queue slot"
                time.sleep(0.005)
                buf = pool.acquire()
                while buf is None:
                    time.sleep(0.001)
                    buf = pool.acquire()
                buf.fill(seq % 251)
    finally:
        start_reading.set()
        reader.join(timeout=40)
        sender.close(linger=0)
        receiver.close(linger=0)
    assert pool.allocated <= 4
    assert waited_for_buffer > 0, "the pool must have been exhausted at least once"
    assert [seq for seq, _ in received] == list(range(total))
    assert all(intact for _, intact in received), [s for s, ok in received if not ok][:10]
    assert stats.sent == total  # drops (peer still connecting) were retried with the same seq


def test_push_without_peer_drops_and_counts(ctx: zmq.Context, sock_dir: Path) -> None:
    sock = pusher(ctx, ipc_endpoint(sock_dir, "nobody"))
    stats = SendStats()
    for n in range(5):
        assert not send_message(sock, status(n), stats=stats)
    assert stats.dropped == 5 and stats.sent == 0
    sock.close(linger=0)


def test_the_process_context_closes_what_is_left_open_without_hanging(
    sock_dir: Path, subprocess_env: dict[str, str]
) -> None:
    """runtime/zmq_context: one context per process; at exit a socket someone left open with an
    unsendable message (LINGER -1 would block a plain term forever) is closed with the bounded
    linger, and a later ``process_context()`` starts afresh."""
    script = textwrap.dedent(f"""
        import time, zmq
        from vadmon.runtime.zmq_context import close_process_context, process_context
        ctx = process_context()
        assert process_context() is ctx
        push = ctx.socket(zmq.PUSH)
        push.setsockopt(zmq.LINGER, -1)
        push.connect("ipc://{sock_dir}/nobody.sock")
        push.send(b"never taken", zmq.NOBLOCK)
        t0 = time.monotonic()
        close_process_context()
        print(round(time.monotonic() - t0, 3), push.closed, ctx.closed, process_context() is ctx)
    """)
    out = subprocess.run([sys.executable, "-c", script], env=subprocess_env, capture_output=True,
                         text=True, timeout=30)  # fmt: skip
    assert out.returncode == 0, out.stderr
    took, *flags = out.stdout.split()
    assert flags == ["True", "True", "False"]
    assert float(took) < 2.0  # the 200 ms linger, with slack for a loaded machine
