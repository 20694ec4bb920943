"""Over capacity the inference loop shares the batch round-robin and counts every drop.

Real parts: the inference loop with its ZeroMQ sockets, snippets whose frames sit in real
shared-memory rings (as capture writes them), a zero-shot scorer on the tiny CLIP, score
messages read from the loop's PUB socket and heartbeats from its PUSH socket.
"""

from __future__ import annotations

import shutil
import time
from collections import Counter

import pytest
import torch
import zmq
from monitor_support import short_dir
from wait_support import wait_for

from vadmon.capture.source import SyntheticSource
from vadmon.inference.embedding import SnippetEncoder
from vadmon.inference.process import InferenceLoop, InferenceSettings
from vadmon.inference.scores import VadClipStreamScorer, ZeroShotScorer
from vadmon.model.clip_factory import create_clip
from vadmon.model.config import load_preset
from vadmon.model.vadclip import VadCLIP
from vadmon.runtime.heartbeat import ENV_ENDPOINT, ENV_NAME, parse_heartbeat
from vadmon.runtime.messages import ScoreMessage, SnippetMessage, decode
from vadmon.runtime.ring import CameraRing
from vadmon.runtime.transport import ipc_endpoint, pusher, send_message, subscriber

CAMERAS = ["cam-a", "cam-b", "cam-c", "cam-d", "cam-e"]
TICKS = 5
BATCH_MAX = 2


@pytest.fixture()
def loop(request, monkeypatch):
    """The loop with a zero-shot scorer, or the scorer built by ``request.param(clip)``."""
    tmp_path = short_dir("vf-")  # ipc socket paths must stay short
    ctx = zmq.Context()
    beat_ep = ipc_endpoint(tmp_path, "beat")
    beats = ctx.socket(zmq.PULL)
    beats.bind(beat_ep)
    monkeypatch.setenv(ENV_ENDPOINT, beat_ep)
    monkeypatch.setenv(ENV_NAME, "inference")
    snippet_eps = [ipc_endpoint(tmp_path, f"snip-{c}") for c in CAMERAS]
    pushers = {c: pusher(ctx, ep) for c, ep in zip(CAMERAS, snippet_eps, strict=True)}
    settings = InferenceSettings(
        snippet_endpoints=snippet_eps,
        score_endpoint=ipc_endpoint(tmp_path, "scores"),
        batch_max=BATCH_MAX,
        batch_wait_ms=300.0,
        max_age_s=getattr(request, "param", (None, 60.0))[1],
        per_camera_max=2,
        heartbeat_s=0.001,
        hwm=8,
        link=None,
        cameras=frozenset(CAMERAS),
        change_gate=None,
        provisional=frozenset(),
    )
    build = getattr(request, "param", (None, 0))[0]
    clip = create_clip("vadmon-tiny")
    scorer = build(clip) if build else ZeroShotScorer(clip, ["normal", "fire"])
    inf = InferenceLoop(settings, scorer, SnippetEncoder(clip), ctx, "cpu/fp32")
    scores = subscriber(ctx, settings.score_endpoint)
    scores.setsockopt(zmq.SUBSCRIBE, b"")
    rings = {c: CameraRing(c, slots=8) for c in CAMERAS}
    _until_subscribed(inf.pub, scores)  # PUB/SUB drops what is sent before the subscription
    yield inf, pushers, rings, scores, beats
    inf.close()
    for sock in [*pushers.values(), scores, beats]:
        sock.close(0)
    for ring in rings.values():
        ring.close()
    ctx.term()
    shutil.rmtree(tmp_path, ignore_errors=True)


def _until_subscribed(pub: zmq.Socket, sub: zmq.Socket) -> None:
    """Readiness, not a sleep: probe the PUB until the SUB receives one, then drain."""

    def arrived() -> bool:
        pub.send_multipart([b"probe", b"{}"])
        return bool(sub.poll(20))

    assert wait_for(arrived, 10)
    while sub.poll(50):
        sub.recv_multipart()


def _send(pushers, rings, camera: str, index: int) -> None:
    frame = SyntheticSource(width=64, height=48).render(index)
    name, slot = rings[camera].write(frame, seq=index, ts=time.time())
    msg = SnippetMessage(
        camera=camera, snippet_index=index, t_start=time.time() - 0.6, t_end=time.time(),
        ring=name, height=48, width=64, slots=[slot], seqs=[index],
    )  # fmt: skip
    assert send_message(pushers[camera], msg)


def _drain(sock, kind) -> list:
    out = []
    while sock.poll(200):
        parts = sock.recv_multipart()
        msg = decode(parts)[0] if kind is ScoreMessage else parts
        out.append(msg)
    return out


def test_batches_are_shared_round_robin_and_drops_are_counted(loop):
    inf, pushers, rings, scores, beats = loop
    beat_frames = []
    for tick in range(TICKS):
        for cam in CAMERAS:
            _send(pushers, rings, cam, tick)
        time.sleep(0.1)
        inf.step()
        beat_frames += _drain(beats, None)  # the sender keeps only a few queued
    scored = Counter(m.camera for m in _drain(scores, ScoreMessage))
    # 5 cameras × 5 ticks, 2 per batch: each camera scored exactly twice (arrival order and
    # names favour nobody), the other three counted as capacity drops
    assert scored == dict.fromkeys(CAMERAS, TICKS * BATCH_MAX // len(CAMERAS))
    last = parse_heartbeat(beat_frames[-1])  # the one validating parser the supervisor uses
    assert last is not None and last.body is not None, last
    cams = last.body.info.cameras
    for cam in CAMERAS:
        drops = {"stale": 0, "backlog": 0, "capacity": 3, "frames": 0, "encoder": 0}
        assert cams[cam].drops == drops
        assert cams[cam].skipped_total == 3 and cams[cam].snippets_total == 2


def test_backlog_and_stale_are_counted_per_camera(loop):
    inf, pushers, rings, scores, beats = loop
    for index in range(4):  # cam-a sends a backlog of four: the newest two are kept
        _send(pushers, rings, "cam-a", index)
    old = SnippetMessage(
        camera="cam-b", snippet_index=0, t_start=0.0, t_end=1.0, ring=rings["cam-a"].name,
        height=48, width=64, slots=[0], seqs=[0],
    )  # fmt: skip
    assert send_message(pushers["cam-b"], old)
    time.sleep(0.1)
    inf.step()
    got = _drain(scores, ScoreMessage)
    assert [(m.camera, m.snippet_index) for m in got] == [("cam-a", 2), ("cam-a", 3)]
    assert inf.cameras["cam-a"].drops["backlog"] == 2
    assert inf.cameras["cam-b"].drops["stale"] == 1


def _lookahead_scorer(clip) -> VadClipStreamScorer:
    cfg = load_preset("ucf").model_config(clip_arch="vadmon-tiny", visual_width=64,
                                          visual_length=32)  # fmt: skip
    torch.manual_seed(0)
    return VadClipStreamScorer(VadCLIP(cfg, clip).eval(), lookahead=2, max_gap=4)


@pytest.mark.parametrize("loop", [(_lookahead_scorer, 1.0)], indirect=True)
def test_lookahead_scores_wait_and_a_quiet_camera_is_flushed(loop):
    inf, pushers, rings, scores, _ = loop
    got = []
    for index in range(5):
        _send(pushers, rings, "cam-a", index)
        time.sleep(0.05)
        inf.step()
        got += _drain(scores, ScoreMessage)
        # snippet t is published once t + 2 arrived, and says how far it could look
        assert [m.snippet_index for m in got] == list(range(max(0, index - 1)))
    assert all(m.timings["lookahead"] == 2.0 for m in got)
    rest: list = []

    def flushed() -> bool:  # the camera goes quiet: its waiting scores come after max_age_s
        inf.step()
        rest.extend(_drain(scores, ScoreMessage))
        return bool(rest)

    assert wait_for(flushed, 10)
    assert time.monotonic() - inf.cameras["cam-a"].last_arrival > 1.0  # not before max_age_s
    assert [(m.snippet_index, m.timings["lookahead"]) for m in rest] == [(3, 1.0), (4, 0.0)]
