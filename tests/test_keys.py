"""CURVE keys: file format, permissions, loading, and real CURVE sockets accepting/refusing."""

from __future__ import annotations

import argparse
import os
import stat
from pathlib import Path

import pytest
import zmq
import zmq.auth
from zmq.utils.monitor import recv_monitor_message

from vadmon.commands import keys as keys_cmd
from vadmon.errors import VadmonError
from vadmon.runtime.security import (
    configure_curve_client,
    configure_curve_server,
    generate_keypair,
    load_allowed_clients,
    load_keypair,
    load_public_key,
    start_authenticator,
)

pytestmark = pytest.mark.timeout(60)


def test_generate_writes_zmq_certificates(tmp_path: Path) -> None:
    public_path, secret_path = generate_keypair(tmp_path / "keys", "server")
    assert stat.S_IMODE(secret_path.stat().st_mode) == 0o600
    public, secret = zmq.auth.load_certificate(secret_path)
    assert zmq.auth.load_certificate(public_path) == (public, None)
    assert zmq.curve_public(secret) == public
    pair = load_keypair(secret_path)
    assert (pair.public, pair.secret) == (public, secret)
    assert secret.decode() not in repr(pair)
    assert load_public_key(public_path) == public


def test_generate_refuses_overwrite_without_force(tmp_path: Path) -> None:
    generate_keypair(tmp_path, "a")
    first = load_public_key(tmp_path / "a.key")
    with pytest.raises(VadmonError, match="already exists"):
        generate_keypair(tmp_path, "a")
    generate_keypair(tmp_path, "a", force=True)
    assert load_public_key(tmp_path / "a.key") != first


def test_load_rejects_bad_files(tmp_path: Path) -> None:
    _, secret_path = generate_keypair(tmp_path, "c")
    os.chmod(secret_path, 0o644)
    with pytest.raises(VadmonError, match="accessible by others"):
        load_keypair(secret_path)
    with pytest.raises(VadmonError, match="no secret key"):
        load_keypair(tmp_path / "c.key")
    garbage = tmp_path / "junk.key_secret"
    garbage.write_text("hello\n")
    os.chmod(garbage, 0o600)
    with pytest.raises(VadmonError, match="not a ZeroMQ CURVE certificate"):
        load_keypair(garbage)
    short = tmp_path / "short.key"
    short.write_text('curve\n    public-key = "abc"\n')
    with pytest.raises(VadmonError, match="malformed"):
        load_public_key(short)
    with pytest.raises(VadmonError, match="not found"):
        load_keypair(tmp_path / "missing.key_secret")
    empty = tmp_path / "allowed"
    empty.mkdir()
    with pytest.raises(VadmonError, match="no client public keys"):
        load_allowed_clients(empty)


def _handshake(client: zmq.Socket, endpoint: str, timeout_ms: int = 10000) -> int:
    """Connect and return the first handshake outcome seen on the client's monitor socket."""
    monitor = client.get_monitor_socket()
    client.connect(endpoint)
    outcomes = {
        zmq.EVENT_HANDSHAKE_SUCCEEDED,
        zmq.EVENT_HANDSHAKE_FAILED_AUTH,
        zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL,
        zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL,
        zmq.EVENT_DISCONNECTED,
    }
    try:
        while monitor.poll(timeout_ms):
            event = recv_monitor_message(monitor)["event"]
            if event in outcomes:
                return event
        raise AssertionError("no handshake outcome")
    finally:
        client.disable_monitor()
        monitor.close(linger=0)


def test_curve_accepts_listed_client_and_refuses_others(tmp_path: Path) -> None:
    _, server_secret = generate_keypair(tmp_path / "server", "server")
    generate_keypair(tmp_path / "allowed", "good")
    _, stranger_secret = generate_keypair(tmp_path / "other", "stranger")
    server_keys = load_keypair(server_secret)
    context = zmq.Context()
    auth = start_authenticator(context, tmp_path / "allowed")
    server = context.socket(zmq.REP)
    sockets = [server]
    try:
        configure_curve_server(server, server_keys)
        port = server.bind_to_random_port("tcp://127.0.0.1")
        endpoint = f"tcp://127.0.0.1:{port}"

        good = context.socket(zmq.REQ)
        sockets.append(good)
        configure_curve_client(
            good, load_keypair(tmp_path / "allowed/good.key_secret"), server_keys.public
        )
        good.connect(endpoint)
        good.send(b"ping")
        assert server.poll(10000) and server.recv() == b"ping"
        server.send(b"pong")
        assert good.poll(10000) and good.recv() == b"pong"

        stranger = context.socket(zmq.REQ)
        sockets.append(stranger)
        configure_curve_client(stranger, load_keypair(stranger_secret), server_keys.public)
        assert _handshake(stranger, endpoint) == zmq.EVENT_HANDSHAKE_FAILED_AUTH

        plain = context.socket(zmq.REQ)
        sockets.append(plain)
        assert _handshake(plain, endpoint) != zmq.EVENT_HANDSHAKE_SUCCEEDED
        assert not server.poll(200)  # nothing from the refused peers reached the server
    finally:
        for sock in sockets:
            sock.close(linger=0)
        auth.stop()
        context.term()


def test_keys_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    parser = argparse.ArgumentParser()
    keys_cmd.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["keys", "generate", "edge", "--dir", str(tmp_path)])
    assert args.handler(args) == 0
    public = load_public_key(tmp_path / "edge.key").decode()
    assert public in capsys.readouterr().out
    args = parser.parse_args(["keys", "show", str(tmp_path / "edge.key_secret")])
    assert args.handler(args) == 0
    out = capsys.readouterr().out
    assert out.strip() == public
    secret = zmq.auth.load_certificate(tmp_path / "edge.key_secret")[1].decode()
    assert secret not in out
