"""The link's back-channel (issue 20, case 14): refusals reach the capture host that caused them.

The first tests run the real capture-side ``VerdictClient`` and inference-side ``VerdictServer``
over real tcp + CURVE sockets in this process (a server with the real key that misbehaves,
one with another key, a restart). The last one runs three "hosts" as separate supervisors on
loopback: a capture host whose key speaks for another camera, one whose clock runs an hour
ahead, and the inference host; each capture host sees its own refusals in its log and
/metrics, per camera, and a verdict server with a forged key is never heard.
"""

from __future__ import annotations

import json
import logging
import math
import os
import re
import shutil
import signal
import socket
import time
from pathlib import Path

import pytest
import zmq
from capture_support import free_port, wait_for
from link_support import handmade_snippet, scrape
from monitor_support import Monitor, write_config
from rich.console import Console
from zmq.utils.monitor import recv_monitor_message

from vadmon.capture.verdicts import VerdictClient, open_verdicts
from vadmon.config import MonitorConfig
from vadmon.dashboard.console import MonitorConsole
from vadmon.dashboard.render import render
from vadmon.errors import VadmonError
from vadmon.inference import verdicts as server_side
from vadmon.runtime.heartbeat import parse_heartbeat
from vadmon.runtime.link import LinkClient, LinkServer
from vadmon.runtime.security import (
    generate_keypair,
    load_keypair,
    load_public_key,
    start_authenticator,
)
from vadmon.runtime.supervisor import Supervisor
from vadmon.settings import link_client, link_server

SOURCE = "synthetic:w=320&h=240&fps=10"


@pytest.fixture
def keys(tmp_path: Path) -> Path:
    for name in ("server", "camhost", "forger"):
        generate_keypair(tmp_path / "keys", name)
    (tmp_path / "allowed").mkdir()
    shutil.copy(tmp_path / "keys" / "camhost.key", tmp_path / "allowed" / "camhost.key")
    return tmp_path / "keys"


def client_of(ctx: zmq.Context, keys: Path, endpoint: str, camera: str) -> VerdictClient:
    link = LinkClient("tcp://127.0.0.1:1", keys / "camhost.key_secret", keys / "server.key")
    client = open_verdicts(ctx, camera, LinkClient(**{**link.__dict__, "verdicts": endpoint}))
    assert client is not None
    return client


def fake_server(ctx: zmq.Context, keys: Path, name: str, endpoint: str) -> zmq.Socket:
    """A ROUTER holding key ``name``: the real server's key, or a forger's."""
    sock = ctx.socket(zmq.ROUTER)
    pair = load_keypair(keys / f"{name}.key_secret")
    sock.curve_secretkey, sock.curve_publickey, sock.curve_server = pair.secret, pair.public, True
    sock.setsockopt(zmq.LINGER, 0)
    sock.bind(endpoint)
    return sock


def next_hello(client: VerdictClient, server: zmq.Socket, timeout_s: float = 10) -> bytes:
    """Poll the client (as its loop does) until the server has a hello; its routing id."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        client.poll(time.monotonic())
        if server.poll(50):
            rid, kind, body = server.recv_multipart()
            assert kind == b"hello" and json.loads(body) == {"camera": client.camera}
            return rid
    raise AssertionError("no hello")


def verdict(camera: str, **fields) -> bytes:
    return json.dumps({"v": 1, "camera": camera, **fields}).encode()


def test_capture_side_takes_only_valid_verdicts_about_its_camera(
    keys: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, "vadmon.capture.verdicts")
    endpoint = f"tcp://127.0.0.1:{free_port()}"
    ctx = zmq.Context()
    client = client_of(ctx, keys, endpoint, "lobby")
    server = fake_server(ctx, keys, "server", endpoint)
    try:
        rid = next_hello(client, server)
        bad = [
            verdict("gate", refused={"refused_camera": 7}),  # about another camera
            b"{not json",
            verdict("lobby", refused={"refused_camera": "7"}),  # a string for a count
            verdict("lobby", refused={"made_up": 7}),
            verdict("lobby", extra=1),
            verdict("lobby", last_reason="x" * 5000),  # over MAX_VERDICT_BYTES
        ]
        for body in bad:
            server.send_multipart([rid, b"verdict", body])
        server.send_multipart([rid, b"verdict", verdict("lobby", accepted=5)])
        for n in range(1, 7):  # 7 valid verdicts at once: 4 taken (MAX_VERDICTS_PER_S), 3 not
            body = verdict("lobby", accepted=5, refused={"clock_skew": n}, last_reason="clock_skew")
            server.send_multipart([rid, b"verdict", body])
        assert wait_for(lambda: client.poll(time.monotonic()) or client.verdicts == 4, 10)
        time.sleep(0.3)  # nothing more is taken: the rate bound holds (poll it a while)
        for _ in range(5):
            client.poll(time.monotonic())
        assert dict(client.ignored) == {
            "foreign": 1, "malformed": 4, "oversized": 1, "rate": 3,
        }  # fmt: skip
        body = client.body()
        assert body["accepted_total"] == 5 and body["refused"] == {"clock_skew": 3.0}
        assert body["last_reason"] == "clock_skew"
        lines = [r.getMessage() for r in caplog.records]
        refusals = [x for x in lines if "the inference host refused" in x]
        assert refusals == [
            "camera lobby: the inference host refused 1 message(s) (clock_skew): dated too far "
            "ahead of the inference host's clock: check this host's clock (NTP)"
        ]
        assert "camera lobby: still clock_skew, 2 attempts" in lines  # collapsed, not 3 lines
        assert lines.count("camera lobby: dropped a link verdict from the inference host "
                           "(foreign)") == 1  # fmt: skip
        # more than libzmq's cut (64 KiB): the session is dropped, and connected again
        server.send_multipart([rid, b"verdict", b"x" * 100_000])
        rid = next_hello(client, server)
        assert client.reconnects >= 1
        # the inference host restarted (counts from 0): a new refusal is news again
        server.close(0)
        server = fake_server(ctx, keys, "server", endpoint)
        rid = next_hello(client, server)
        server.send_multipart([rid, b"verdict", verdict("lobby", accepted=9)])
        assert wait_for(lambda: client.poll(time.monotonic()) or client.verdicts == 5, 10)
        assert "camera lobby: the inference host accepts this camera's messages again" in [
            r.getMessage() for r in caplog.records
        ]
        assert client.body()["refused"] == {} and client.body()["accepted_total"] == 9
    finally:
        client.close()
        server.close(0)
        ctx.term()


def test_a_verdict_server_with_another_key_is_never_heard(keys: Path) -> None:
    endpoint = f"tcp://127.0.0.1:{free_port()}"
    ctx = zmq.Context()
    client = client_of(ctx, keys, endpoint, "lobby")
    forger = fake_server(ctx, keys, "forger", endpoint)
    monitor = forger.get_monitor_socket()
    failed = 0
    try:
        deadline = time.monotonic() + 15
        while failed < 2 and time.monotonic() < deadline:  # the client tried, twice
            client.poll(time.monotonic())
            while monitor.poll(20):
                event = recv_monitor_message(monitor)["event"]
                failed += bool(event & zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL)
            assert not forger.poll(0), "a hello reached a server with another key"
        assert failed >= 2
        assert client.verdicts == 0 and not client.ignored
    finally:
        client.close()
        monitor.close(0)
        forger.close(0)
        ctx.term()


def test_server_answers_each_key_only_about_what_it_sent(keys: Path, tmp_path: Path) -> None:
    book = server_side.VerdictBook(frozenset({"lobby", "gate"}))
    lobby, _ = handmade_snippet("lobby", 0)
    gate, _ = handmade_snippet("gate", 0)
    nowhere, _ = handmade_snippet("nowhere", 0)
    book.note("keyA", lobby, "refused_camera")
    book.note("keyA", gate, None)
    book.note("keyB", lobby, "clock_skew")
    book.note("keyA", nowhere, "unknown_camera")
    book.note("keyA", lobby, "a_reason_the_wire_does_not_know")  # never an invalid verdict
    assert book.verdict("keyA", "lobby").refused == {"refused_camera": 1}
    assert book.verdict("keyB", "lobby").refused == {"clock_skew": 1}
    assert book.verdict("keyA", "gate").accepted == 1 and not book.verdict("keyB", "gate").accepted
    assert book.verdict("keyA", "nowhere").refused == {"unknown_camera": 1}
    # over the real socket: only an allowed key is answered, at most once per ANSWER_EVERY_S
    port = free_port()
    link = LinkServer(
        "tcp://127.0.0.1:1", keys / "server.key_secret", tmp_path / "allowed", {}, 30.0,
        f"tcp://127.0.0.1:{port}",
    )  # fmt: skip
    ctx = zmq.Context()
    auth = start_authenticator(ctx, tmp_path / "allowed")  # as open_server does
    server = server_side.open_verdicts(ctx, link, frozenset({"lobby"}))
    assert server.sock is not None
    client = client_of(ctx, keys, f"tcp://127.0.0.1:{port}", "lobby")

    def exchange() -> bool:
        server.serve()
        client.poll(time.monotonic())
        return client.verdicts >= 1

    try:
        server.note(load_public_key(keys / "camhost.key").decode(), lobby, "refused_camera")
        assert wait_for(exchange, 10)
        assert client.body()["refused"] == {"refused_camera": 1.0}
        sent = server.counters["verdicts_sent"]
        for _ in range(5):  # hellos faster than the answer rate: the extra ones are dropped
            client._hello_at = -math.inf
            client.poll(time.monotonic())
            time.sleep(0.02)
            server.serve()
        assert server.counters["hellos_dropped"] >= 3
        assert server.counters["verdicts_sent"] - sent <= 1
    finally:
        client.close()
        server.close()
        auth.stop()
        ctx.term()


def test_a_verdict_port_in_use_costs_only_the_back_channel(
    keys: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        where = f"tcp://127.0.0.1:{taken.getsockname()[1]}"
        link = LinkServer(
            "tcp://127.0.0.1:1", keys / "server.key_secret", tmp_path / "allowed", {}, 30.0, where
        )
        ctx = zmq.Context()
        server = server_side.open_verdicts(ctx, link, frozenset({"lobby"}))
        assert server.sock is None and server.serve() == 0
        server.close()
        ctx.term()
    lines = [r.getMessage() for r in caplog.records if "link verdicts" in r.getMessage()]
    assert len(lines) == 1 and lines[0].startswith("link verdicts: cannot bind: Address already")
    assert lines[0].endswith(
        f" at {where}; capture hosts will not see their refusals (snippets are not affected): "
        "free that port or set transport.tcp.verdicts.bind"
    )


def test_verdict_endpoints_default_beside_the_link_and_follow_the_keys(tmp_path: Path) -> None:
    base = {
        "cameras": {"lobby": {"source": SOURCE}},
        "transport": {"tcp": {"connect": "tcp://10.0.0.2:5555"}, "curve": {
            "client_secret_file": "c.key_secret", "server_public_file": "s.key"}},
    }  # fmt: skip
    cfg = MonitorConfig.model_validate(base)
    assert link_client(cfg).verdicts == "tcp://10.0.0.2:5556"
    base["transport"]["tcp"]["verdicts"] = {"connect": "tcp://10.0.0.2:7000"}
    assert link_client(MonitorConfig.model_validate(base)).verdicts == "tcp://10.0.0.2:7000"
    (tmp_path / "allowed").mkdir()
    generate_keypair(tmp_path / "allowed", "camhost")
    base["transport"] = {
        "tcp": {"bind": "tcp://0.0.0.0:5555"},
        "curve": {
            "server_secret_file": "s.key_secret",
            "allowed_clients_dir": str(tmp_path / "allowed"),
        },
    }
    assert link_server(MonitorConfig.model_validate(base)).verdict_bind == "tcp://0.0.0.0:5556"
    base["transport"]["tcp"]["verdicts"] = {"bind": "tcp://0.0.0.0:7001"}
    assert link_server(MonitorConfig.model_validate(base)).verdict_bind == "tcp://0.0.0.0:7001"
    base["transport"]["tcp"]["bind"] = "tcp://0.0.0.0:65535"
    del base["transport"]["tcp"]["verdicts"]
    with pytest.raises(VadmonError, match="port \\+ 1"):
        link_server(MonitorConfig.model_validate(base))


def test_the_capture_row_shows_the_refusal(tmp_path: Path) -> None:
    """What the capture host's dashboard draws from its heartbeat's ``info.link``: the live
    row and the service-mode status line."""
    cfg = MonitorConfig.model_validate({"cameras": {"lobby": {"source": SOURCE}}})
    monitor = MonitorConsole(cfg, Supervisor([]), dashboard=False)
    state = monitor.state
    link = {"accepted_total": 3.0, "refused": {"clock_skew": 12.0}, "last_reason": "clock_skew",
            "verdicts_total": 4.0, "ignored": {}}  # fmt: skip
    raw = json.dumps({"process": "capture:lobby", "ts": time.time(), "pid": 1, "camera": "lobby",
                      "state": "online", "info": {"link": link}}).encode()  # fmt: skip
    hb = parse_heartbeat([raw])
    assert hb is not None
    state.update_heartbeat(hb)
    console = Console(width=120, height=20, record=True, color_system=None)
    console.print(render(state.view(), 120, 20))
    assert re.search(r"lobby .*link refused 12 \(clock ahead\)", console.export_text())
    assert monitor.status_lines()[0].endswith(", score —, link refused 12 (clock ahead)")


def metric(text: str, name: str, **labels: str) -> float | None:
    """One sample's value from /metrics text (None when absent)."""
    inner = ",".join(f'{k}="{v}"' for k, v in labels.items())
    match = re.search(rf"^{name}\{{{re.escape(inner)}\}} (\S+)$", text, re.M)
    return float(match.group(1)) if match else None


def host_transport(port: int, verdicts: int, keys: Path, client: str) -> str:
    return f"""  tcp:
    connect: "tcp://127.0.0.1:{port}"
    verdicts: {{connect: "tcp://127.0.0.1:{verdicts}"}}
  curve:
    client_secret_file: {keys / f"{client}.key_secret"}
    server_public_file: {keys / "server.key"}"""


@pytest.mark.slow
def test_capture_hosts_see_their_own_refusals_in_log_and_metrics(
    tmp_path: Path, subprocess_env: dict[str, str], demo_checkpoint: Path
) -> None:
    keys, allowed = tmp_path / "keys", tmp_path / "allowed"
    for name in ("server", "rogue", "skewed", "forger"):
        generate_keypair(keys, name)
    allowed.mkdir()
    for name in ("rogue", "skewed"):
        shutil.copy(keys / f"{name}.key", allowed / f"{name}.key")
    port, vport, m_inf, m_rogue, m_skewed = (free_port() for _ in range(5))
    metrics = "metrics: {{prometheus_port: {}}}".format
    inf_cfg = write_config(
        tmp_path / "inference.yaml", {"lobby": SOURCE, "gate": SOURCE}, demo_checkpoint,
        extra=metrics(m_inf), transport=f"""  tcp:
    bind: "tcp://127.0.0.1:{port}"
    verdicts: {{bind: "tcp://127.0.0.1:{vport}"}}
  curve:
    server_secret_file: {keys / "server.key_secret"}
    allowed_clients_dir: {allowed}
    client_cameras: {{rogue: [gate], skewed: [lobby]}}""",
    )  # fmt: skip
    # rogue's key may send gate, not lobby; skewed's may send lobby, but its clock is 1 h ahead
    rogue_cfg = write_config(
        tmp_path / "rogue.yaml", {"lobby": SOURCE, "gate": SOURCE}, demo_checkpoint,
        extra=metrics(m_rogue), transport=host_transport(port, vport, keys, "rogue"),
    )  # fmt: skip
    skewed_cfg = write_config(
        tmp_path / "skewed.yaml", {"lobby": SOURCE + "&skew=3600"}, demo_checkpoint,
        extra=metrics(m_skewed), transport=host_transport(port, vport, keys, "skewed"),
    )  # fmt: skip
    ctx = zmq.Context()
    forger = fake_server(ctx, keys, "forger", f"tcp://127.0.0.1:{vport}")  # there first
    watch = forger.get_monitor_socket(zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL)
    rogue = Monitor(rogue_cfg, subprocess_env, role="capture").start()
    skewed = Monitor(skewed_cfg, subprocess_env, role="capture").start()
    inference = Monitor(inf_cfg, subprocess_env, role="inference")
    try:
        # all three capture processes asked the forged server: not one hello got through
        failed = 0
        deadline = time.monotonic() + 60
        while failed < 6 and time.monotonic() < deadline:
            if watch.poll(200):
                watch.recv_multipart()
                failed += 1
            assert not forger.poll(0), "a hello reached a server holding another key"
        assert failed >= 6, rogue.output()[-2000:]
        watch.close(0)
        forger.close(0)
        inference.start()  # binds the port the forger held: the capture hosts come through

        def seen() -> bool:
            r, s = scrape(m_rogue), scrape(m_skewed)
            return (
                metric(r, "vadmon_link_refused_total", camera="lobby", reason="refused_camera")
                is not None
                and (metric(r, "vadmon_link_accepted_total", camera="gate") or 0) > 0
                and metric(s, "vadmon_link_refused_total", camera="lobby", reason="clock_skew")
                is not None
            )

        assert wait_for(seen, 120, 0.5), inference.output()[-3000:] + rogue.output()[-3000:]
        r, s = scrape(m_rogue), scrape(m_skewed)
        # each host sees only what its own key sent: no clock_skew at rogue, no key refusal at
        # skewed, nothing refused for rogue's own camera, no verdict dropped, nothing forged
        assert re.findall(r'^vadmon_link_refused_total\{camera="(\w+)",reason="(\w+)"', r, re.M) == [
            ("lobby", "refused_camera")
        ]  # fmt: skip
        assert re.findall(r'^vadmon_link_refused_total\{camera="(\w+)",reason="(\w+)"', s, re.M) == [
            ("lobby", "clock_skew")
        ]  # fmt: skip
        assert "vadmon_link_verdicts_ignored_total{" not in r + s
        log_r, log_s = rogue.output(), skewed.output()
        key_line = "camera lobby: the inference host refused"
        assert log_r.count(key_line) == 1 and "(refused_camera): this host's key may not" in log_r
        assert log_s.count(key_line) == 1 and "(clock_skew): dated too far ahead" in log_s
        assert "camera gate: the inference host refused" not in log_r
        # a capture process restart (SIGKILL) on one side wedges nothing: the new process asks
        # again and is told again (the inference host kept the key's counts)
        before = metric(r, "vadmon_link_refused_total", camera="lobby", reason="refused_camera")
        old = rogue.child("capture:lobby")
        os.kill(old, signal.SIGKILL)
        rogue.child("capture:lobby", 30, not_pid=old)
        assert wait_for(lambda: rogue.output().count(key_line) == 2, 60), rogue.output()[-3000:]

        def told_again() -> bool:
            n = metric(scrape(m_rogue), "vadmon_link_refused_total", camera="lobby",
                       reason="refused_camera")  # fmt: skip
            return n is not None and n >= before  # (the heartbeat follows the log line)

        assert wait_for(told_again, 30, 0.5)
        # the inference host shows them as well, per camera
        i = scrape(m_inf)
        assert metric(i, "vadmon_link_refused_total", camera="lobby", reason="clock_skew")
        assert metric(i, "vadmon_link_refused_total", camera="lobby", reason="refused_camera")
        for mon in (rogue, skewed, inference):
            assert mon.stop() == 0
            assert "Traceback" not in mon.output(), mon.output()[-3000:]
    finally:
        watch.close(0)  # (again: closing twice is harmless)
        forger.close(0)
        ctx.term()
        for mon in (rogue, skewed, inference):
            mon.kill_all()
