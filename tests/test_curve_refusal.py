"""Issue 21 (logs): a refused CURVE key is visible on both hosts. Real ZeroMQ sockets over
tcp with real key files: the client logs one ERROR naming its key, the server one WARNING per
refused key however often the client retries; an allowed key logs neither."""

from __future__ import annotations

import logging
import time
from pathlib import Path

import zmq

from tests.capture_support import free_port
from vadmon.runtime.link import LinkClient, LinkServer, open_client, open_server
from vadmon.runtime.security import generate_keypair, load_public_key
from vadmon.runtime.transport import SocketLimits


def _lines(caplog, level: int, text: str) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno == level and text in r.getMessage()]


def test_refused_key_logged_once_on_each_side(tmp_path: Path, caplog) -> None:
    caplog.set_level(logging.INFO, logger="vadmon.link")
    keys, allowed = tmp_path / "keys", tmp_path / "allowed"
    generate_keypair(keys, "server")
    generate_keypair(keys, "intruder")
    camhost_public, _ = generate_keypair(allowed, "camhost")
    endpoint = f"tcp://127.0.0.1:{free_port()}"
    ctx = zmq.Context()
    server = LinkServer(endpoint, keys / "server.key_secret", allowed, {}, 5.0)
    pull, auth = open_server(ctx, server, SocketLimits())
    limits = SocketLimits(linger_ms=0)
    bad = open_client(
        ctx, LinkClient(endpoint, keys / "intruder.key_secret", keys / "server.key"), limits
    )
    bad.setsockopt(zmq.RECONNECT_IVL, 20)  # retry fast: many refused handshakes
    good = open_client(
        ctx, LinkClient(endpoint, allowed / "camhost.key_secret", keys / "server.key"), limits
    )
    try:
        good.send(b"hello")
        assert pull.poll(10_000) and pull.recv() == b"hello"
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not _lines(caplog, logging.ERROR, "refused this"):
            time.sleep(0.02)
        time.sleep(0.5)  # let ~20 more refused attempts happen: still one line each side
        client = _lines(caplog, logging.ERROR, "inference host refused this host's CURVE key")
        assert len(client) == 1 and "intruder.key" in client[0], client
        served = _lines(caplog, logging.WARNING, "refused a capture host's CURVE key")
        assert len(served) == 1, served
        assert load_public_key(keys / "intruder.key").decode() in served[0]
        assert "camhost" not in " ".join(client + served) and camhost_public.exists()
        assert not any("key_secret" in r.getMessage() for r in caplog.records)
    finally:
        for sock in (bad, good, pull):
            sock.close(linger=0)
        auth.stop()
        ctx.term()
