"""Capture and inference on two "hosts" (two separately started monitors) over tcp + CURVE.

Loopback stands in for the network; each side has its own config, instance and ipc directory,
so nothing but the tcp link connects them (no shared memory: frames travel in the message).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import zmq
from capture_support import free_port, wait_for
from link_support import (
    client_transport,
    handmade_snippet,
    keys_generate,
    scrape,
    server_transport,
)
from monitor_support import Listener, Monitor, short_dir, write_config

from vadmon.model import crops
from vadmon.runtime.link import FRAME_HEIGHT, FRAME_WIDTH
from vadmon.runtime.messages import MessageError, decode
from vadmon.runtime.security import load_keypair, load_public_key
from vadmon.runtime.transport import send_message

pytestmark = pytest.mark.slow
SOURCE = "synthetic:w=320&h=240&fps=10"


def push_snippets(
    endpoint: str, camera: str, n: int, curve_keys: tuple | None, ahead_s: float = 0.0
) -> int:
    """Connect a PUSH (CURVE client when ``curve_keys``), try to send ``n`` snippets."""
    ctx = zmq.Context()
    sock = ctx.socket(zmq.PUSH)
    sock.setsockopt(zmq.LINGER, 0)
    sock.setsockopt(zmq.SNDHWM, 4)
    if curve_keys is not None:
        pair, server = curve_keys
        sock.curve_secretkey, sock.curve_publickey, sock.curve_serverkey = (
            pair.secret,
            pair.public,
            server,
        )
    sock.connect(endpoint)
    sent = 0
    try:
        for i in range(n):
            msg, payload = handmade_snippet(camera, i, ahead_s)
            if sock.poll(500, zmq.POLLOUT):
                sent += send_message(sock, msg, payload)
            time.sleep(0.4)
    finally:
        sock.close(0)
        ctx.term()
    return sent


def test_payload_is_validated_by_shape() -> None:
    assert (FRAME_WIDTH, FRAME_HEIGHT) == (crops.FRAME_WIDTH, crops.FRAME_HEIGHT)
    msg, payload = handmade_snippet("cam", 0)
    got, body = decode(msg.to_parts(payload))
    assert got == msg and body == payload
    for bad in (payload[:-1], payload + b"\0", b""):
        with pytest.raises(MessageError, match="payload has"):
            decode(msg.to_parts(bad))


def test_split_hosts_over_curve_refuse_unknown_and_plaintext(
    tmp_path: Path, subprocess_env: dict[str, str], demo_checkpoint: Path
) -> None:
    keys, allowed = tmp_path / "keys", tmp_path / "allowed"
    for name in ("server", "camhost", "intruder"):
        keys_generate(subprocess_env, keys, name)
    allowed.mkdir()
    shutil.copy(keys / "camhost.key", allowed / "camhost.key")
    port = free_port()
    endpoint = f"tcp://127.0.0.1:{port}"
    cams = {"lobby": SOURCE}
    inf_ipc, cap_ipc, bad_ipc = (short_dir() / "ipc" for _ in range(3))
    metrics_port = free_port()  # door: configured here, but no key may send it
    inf_cfg = write_config(
        tmp_path / "inference.yaml", {**cams, "door": SOURCE}, demo_checkpoint, ipc=inf_ipc,
        transport=server_transport(port, keys, allowed, "client_cameras: {camhost: [lobby]}"),
        extra=f"metrics: {{prometheus_port: {metrics_port}}}",
    )  # fmt: skip
    cap_cfg = write_config(
        tmp_path / "capture.yaml", cams, demo_checkpoint, ipc=cap_ipc,
        transport=client_transport(port, keys, "camhost"),
    )  # fmt: skip
    bad_cfg = write_config(
        tmp_path / "intruder.yaml", {"intruder": SOURCE}, demo_checkpoint, ipc=bad_ipc,
        transport=client_transport(port, keys, "intruder"),
    )  # fmt: skip
    # capture first, inference later: the link comes up by itself
    capture = Monitor(cap_cfg, subprocess_env, role="capture").start()
    time.sleep(2)
    inference = Monitor(inf_cfg, subprocess_env, role="inference").start()
    intruder = subprocess.Popen(
        [sys.executable, "-m", "vadmon.capture", "--config", str(bad_cfg), "--camera", "intruder"],
        env=subprocess_env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    scores = Listener(inf_ipc, [])
    cap_status = Listener(cap_ipc, ["lobby"])
    bad_status = Listener(bad_ipc, ["intruder"])
    try:
        assert scores.wait_scores("lobby", 3, 150), inference.output()[-3000:]
        assert capture.children().keys() == {"capture:lobby", "janitor"}
        assert {"inference", "alerts"} <= inference.children().keys()
        assert "capture:lobby" not in inference.children()
        lobby = scores.scores_for("lobby")[-1]
        assert lobby.mode == "vadclip" and 0.0 <= lobby.score <= 1.0
        assert wait_for(lambda: cap_status.counter("lobby", "snippets_sent") >= 3, 10)
        # the allowed key, but a camera that is not its own, or a snippet dated an hour ahead:
        # both dropped (before: scored, an event for an unconfigured camera; the future one
        # held back the camera's real events for an hour)
        allowed_keys = (
            load_keypair(keys / "camhost.key_secret"),
            load_public_key(keys / "server.key"),
        )
        intruder_keys = (load_keypair(keys / "intruder.key_secret"), allowed_keys[1])
        assert push_snippets(endpoint, "handmade", 4, allowed_keys) >= 1
        assert push_snippets(endpoint, "door", 4, allowed_keys) >= 1
        assert push_snippets(endpoint, "lobby", 4, allowed_keys, ahead_s=3600) >= 1
        push_snippets(endpoint, "plaintext", 6, None)
        push_snippets(endpoint, "unknownkey", 6, intruder_keys)
        assert wait_for(lambda: bad_status.counter("intruder", "snippet_drops_total") >= 2, 60)
        before = len(scores.scores_for("lobby"))
        assert scores.wait_scores("lobby", before + 2, 30)  # the link kept working meanwhile
        seen = {m.camera for _, m in scores.scores}
        assert seen == {"lobby"}, seen
        assert max(m.t_end for _, m in scores.scores) < time.time() + 60
        assert bad_status.counter("intruder", "snippets_sent") == 0
        # issue 20 case 14: the refusals per camera, in the log and on /metrics (before:
        # only an unlabelled heartbeat counter); an unconfigured name is one counter, no state
        door = 'vadmon_link_refused_total{camera="door",reason="refused_camera"}'
        ahead = 'vadmon_link_refused_total{camera="lobby",reason="clock_skew"}'
        assert wait_for(lambda: door in scrape(metrics_port) and ahead in scrape(metrics_port), 30)
        log = inference.output()
        assert "camera door: refused 1 message(s) sent by a client key" in log
        assert "camera lobby: refused 1 message(s) dated too far ahead" in log
        assert "naming cameras not in this config" in log and "handmade" not in scrape(metrics_port)
        # issue 21: the intruder's key (its process and push_snippets retry it) is named once
        assert log.count("refused a capture host's CURVE key") == 1, log[-3000:]
        assert intruder.poll() is None
        assert capture.stop() == 0 and inference.stop() == 0
        for mon in (capture, inference):
            assert "Traceback" not in mon.output(), mon.output()[-3000:]
    finally:
        intruder.kill()
        intruder.wait(10)
        for listener in (scores, cap_status, bad_status):
            listener.close()
        capture.kill_all()
        inference.kill_all()


def test_split_roles_need_their_tcp_side(tmp_path: Path, subprocess_env: dict[str, str]) -> None:
    cfg = write_config(tmp_path / "plain.yaml", {"cam": SOURCE}, tmp_path / "none.pt")
    for role in ("capture", "inference"):
        out = subprocess.run(
            [sys.executable, "-m", "vadmon", "run", "--config", str(cfg), "--role", role],
            env=subprocess_env, capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert out.returncode == 2, out.stderr
        assert f"--role {role} needs transport.tcp" in out.stderr
        assert "Traceback" not in out.stderr and out.stderr.count("\n") == 1
