"""Snippets capture held while the model loaded are all scored, at most one batch per step.

Measured at real size (docs/PERFORMANCE.md "Held snippets"): 6 cameras × 32 held snippets reached a
fresh inference process at once, one step took 64 of them into a single ViT-B-16 forward, no
heartbeat left for 10 s and the supervisor killed it, every start again. Real parts: the loop and
its ZeroMQ sockets, frames packed inline by capture's own ``FramePacker`` from a real ring (as
``SnippetHold`` sends them), a zero-shot scorer on the tiny CLIP, scores read from its PUB.
"""

from __future__ import annotations

import shutil
import time

import zmq
from monitor_support import short_dir

from vadmon.capture.source import SyntheticSource
from vadmon.inference.embedding import SnippetEncoder
from vadmon.inference.process import InferenceLoop, InferenceSettings
from vadmon.inference.scores import ZeroShotScorer
from vadmon.model.clip_factory import create_clip
from vadmon.runtime.link import FramePacker
from vadmon.runtime.messages import ScoreMessage, SnippetMessage, decode
from vadmon.runtime.ring import CameraRing
from vadmon.runtime.transport import ipc_endpoint, pusher, send_message, subscriber

CAMERAS = ("cam-a", "cam-b")
HELD = 5  # per camera
BATCH_MAX = 3


def test_held_snippets_are_scored_in_order_one_batch_per_step():
    tmp = short_dir("vh-")
    ctx = zmq.Context()
    eps = [ipc_endpoint(tmp, f"snip-{c}") for c in CAMERAS]
    pushers = {c: pusher(ctx, ep) for c, ep in zip(CAMERAS, eps, strict=True)}
    settings = InferenceSettings(
        snippet_endpoints=eps, score_endpoint=ipc_endpoint(tmp, "scores"), batch_max=BATCH_MAX,
        batch_wait_ms=300.0, max_age_s=1.0, per_camera_max=2, hwm=64, heartbeat_s=1.0,
        link=None, cameras=frozenset(CAMERAS), change_gate=None, provisional=frozenset(),
    )  # fmt: skip
    clip = create_clip("vadmon-tiny")
    loop = InferenceLoop(
        settings, ZeroShotScorer(clip, ["normal", "fire"]), SnippetEncoder(clip), ctx
    )
    scores = subscriber(ctx, settings.score_endpoint)
    scores.setsockopt(zmq.SUBSCRIBE, b"")
    rings = {c: CameraRing(c, slots=HELD + 1) for c in CAMERAS}
    packer = FramePacker()
    try:
        deadline = time.monotonic() + 10
        while not scores.poll(20):  # readiness: a probe gets through the PUB/SUB pair
            assert time.monotonic() < deadline, "score subscriber never connected"
            loop.pub.send_multipart([b"probe"])
        while scores.poll(50):
            scores.recv_multipart()
        old = time.time() - 60  # far past max_age_s: only ``held`` keeps them
        for cam in CAMERAS:
            for i in range(HELD):
                name, slot = rings[cam].write(SyntheticSource(64, 48).render(i), i, old + i)
                msg = SnippetMessage(cam, i, old + i - 0.6, old + i, name, 48, 64, [slot], [i])
                packed = packer.pack(msg)
                assert packed is not None
                held = (SnippetMessage(**{**packed[0].__dict__, "held": True}), packed[1])
                deadline = time.monotonic() + 10
                while not send_message(pushers[cam], *held):  # until the loop is connected
                    assert time.monotonic() < deadline, "inference never connected"
                    time.sleep(0.02)
        per_step, got = [], []
        deadline = time.monotonic() + 60
        while len(got) < HELD * len(CAMERAS) and time.monotonic() < deadline:
            loop.step()
            new = []
            while scores.poll(100):
                new.append(decode(scores.recv_multipart())[0])
            per_step.append(len(new))
            got += [m for m in new if isinstance(m, ScoreMessage)]
        for cam in CAMERAS:  # every held snippet scored, in order, none dropped
            assert [m.snippet_index for m in got if m.camera == cam] == list(range(HELD))
            assert sum(loop.cameras[cam].drops.values()) == 0
        assert max(per_step) <= BATCH_MAX and sum(per_step) == HELD * len(CAMERAS), per_step
    finally:
        loop.close()
        packer.close()
        for sock in [*pushers.values(), scores]:
            sock.close(0)
        for ring in rings.values():
            ring.close()
        ctx.term()
        shutil.rmtree(tmp, ignore_errors=True)
