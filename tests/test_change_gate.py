"""Change gating on real footage: gated scores stay within 0.01 of ungated, a static scene skips
most of the tower, and a real change (the red flash) is never gated away.

Real parts: vtest.avi decoded by OpenCV, the demo VadCLIP (tiny CLIP, fires on red flashes), two
inference loops (one ``change_gate`` on, one off) with their ZeroMQ sockets, each fed the same
batches across three cameras through ``InferenceLoop.process`` (the hook the loop runs), scores
read from the loops' PUB sockets, heartbeats through the validating parser the supervisor uses,
and the alert event logic (``CameraEvents``) turning both score streams into events.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
import zmq
from monitor_support import short_dir

from vadmon.alerts.event import CameraEvents
from vadmon.config import MonitorConfig
from vadmon.dashboard.prometheus import StateCollector
from vadmon.dashboard.state import DashboardState
from vadmon.inference.change_gate import ChangeGate
from vadmon.inference.embedding import SnippetEncoder
from vadmon.inference.process import InferenceLoop, InferenceSettings
from vadmon.inference.scores import VadClipStreamScorer
from vadmon.model import load_model
from vadmon.model.clip_factory import create_clip
from vadmon.runtime.heartbeat import ENV_ENDPOINT, ENV_NAME, parse_heartbeat
from vadmon.runtime.messages import ScoreMessage, SnippetMessage, decode
from vadmon.runtime.transport import ipc_endpoint, subscriber
from vadmon.settings import event_settings, gate_settings

SNIPPETS = 48
STREET_FLASH = range(20, 26)  # the anomaly of test_streaming_vs_offline: a red flash
PAUSE = range(10, 30)  # the "paused" camera holds snippet 9's scene (fresh noise each time)
PAUSED_FLASH = range(36, 42)
CAMERAS = ("paused", "static", "street")
BASE = {"cameras": {c: {"source": "synthetic:"} for c in CAMERAS}}


def _gate_cfg(**keys) -> MonitorConfig:
    return MonitorConfig.model_validate({**BASE, "change_gate": {"enabled": True, **keys}})


def _noisy(frame: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The same scene seen again: sensor noise (σ = 2 grey levels) and JPEG (q 85)."""
    noisy = np.clip(frame + rng.normal(0, 2, frame.shape), 0, 255).astype(np.uint8)
    ok, jpeg = cv2.imencode(".jpg", noisy, [cv2.IMWRITE_JPEG_QUALITY, 85])
    assert ok
    return cv2.imdecode(jpeg, cv2.IMREAD_COLOR)


def _flash(frame: np.ndarray) -> np.ndarray:
    return (frame * 0.2 + np.array([0, 0, 255]) * 0.8).astype(np.uint8)


@pytest.fixture(scope="module")
def footage(vtest_path) -> dict[str, list[np.ndarray]]:
    """Per camera, the sampled (middle) frame of each 16-frame snippet."""
    cap = cv2.VideoCapture(str(vtest_path))
    mids = []
    for _ in range(SNIPPETS):
        frames = [cap.read() for _ in range(16)]
        assert all(ok for ok, _ in frames), "vtest.avi is shorter than expected"
        mids.append(frames[8][1])
    cap.release()
    rng = np.random.default_rng(0)
    street = [_flash(f) if i in STREET_FLASH else f for i, f in enumerate(mids)]
    paused = [_noisy(mids[9], rng) if i in PAUSE else f for i, f in enumerate(mids)]
    paused = [_flash(f) if i in PAUSED_FLASH else f for i, f in enumerate(paused)]
    static = [_noisy(mids[0], rng) for _ in range(SNIPPETS)]
    return {"street": street, "paused": paused, "static": static}


class Harness:
    """One inference loop with its sockets; ``run`` feeds every snippet, returns the scores."""

    def __init__(self, model_path: Path, cfg: MonitorConfig, monkeypatch) -> None:
        self.dir = short_dir("vg-")
        self.ctx = zmq.Context()
        self.beats = self.ctx.socket(zmq.PULL)
        beat_ep = ipc_endpoint(self.dir, "beat")
        self.beats.bind(beat_ep)
        monkeypatch.setenv(ENV_ENDPOINT, beat_ep)
        monkeypatch.setenv(ENV_NAME, "inference")
        settings = InferenceSettings(
            snippet_endpoints=[ipc_endpoint(self.dir, "snip")],
            score_endpoint=ipc_endpoint(self.dir, "scores"),
            batch_max=8, batch_wait_ms=10.0, max_age_s=60.0, per_camera_max=2, hwm=1000,
            heartbeat_s=0.0, link=None, cameras=frozenset(CAMERAS),
            change_gate=gate_settings(cfg), provisional=frozenset(),
        )  # fmt: skip
        model = load_model(model_path)
        scorer = VadClipStreamScorer(model)
        self.loop = InferenceLoop(settings, scorer, SnippetEncoder(model.clipmodel), self.ctx)
        self.sub = subscriber(self.ctx, settings.score_endpoint)
        self.sub.setsockopt(zmq.SUBSCRIBE, b"")
        deadline = time.monotonic() + 10
        while not self.sub.poll(20):  # readiness: a probe gets through the PUB/SUB pair
            assert time.monotonic() < deadline, "score subscriber never connected"
            self.loop.pub.send_multipart([b"probe"])
        self.encoded_at: dict[str, list[int]] = {c: [] for c in CAMERAS}

    def run(self, footage: dict[str, list[np.ndarray]]) -> dict[str, list[ScoreMessage]]:
        t0 = time.time() - SNIPPETS * 1.6
        for i in range(SNIPPETS):
            ready = []
            for cam in CAMERAS:
                frame = footage[cam][i]
                msg = SnippetMessage(
                    camera=cam, snippet_index=i, t_start=t0 + 1.6 * i, t_end=t0 + 1.6 * i + 1.5,
                    ring="", height=frame.shape[0], width=frame.shape[1], slots=[0], seqs=[i],
                )  # fmt: skip
                ready.append((msg, [frame]))
            before = self._encoded()
            self.loop.process(ready, time.time())
            for cam, n in self._encoded().items():
                if n > before[cam]:
                    self.encoded_at[cam].append(i)
        self.loop.beat()
        out: dict[str, list[ScoreMessage]] = {c: [] for c in CAMERAS}
        while self.sub.poll(500):
            parts = self.sub.recv_multipart()
            if parts != [b"probe"]:
                msg = decode(parts)[0]
                out[msg.camera].append(msg)
        return out

    def _encoded(self) -> dict[str, int]:
        gate = self.loop.gate
        return {c: gate.camera(c).encoded if gate else 0 for c in CAMERAS}

    def heartbeat(self):
        """The last heartbeat, validated, and what the dashboard and /metrics make of it."""
        last = None
        while self.beats.poll(200):
            last = self.beats.recv_multipart()
        beat = parse_heartbeat(last)
        assert beat is not None and beat.body is not None
        state = DashboardState(cameras=CAMERAS)
        state.update_heartbeat(beat)
        family = {m.name: m for m in StateCollector(state).collect()}["vadmon_gate_reused_snippets"]
        metrics = {s.labels["camera"]: s.value for s in family.samples if s.name.endswith("_total")}
        return beat.body.info.cameras, metrics

    def close(self) -> None:
        self.loop.close()
        for sock in (self.sub, self.beats):
            sock.close(0)
        self.ctx.term()
        shutil.rmtree(self.dir, ignore_errors=True)


def _events(cfg: MonitorConfig, camera: str, scores: list[ScoreMessage]) -> list[str]:
    events = CameraEvents(camera, event_settings(cfg.cameras[camera].alerts))
    return [f"{ev.kind}@{m.snippet_index}" for m in scores for ev in events.feed(m)]


def test_gated_scores_match_ungated_on_vtest_and_flashes_stay_events(
    demo_checkpoint, footage, monkeypatch
):
    gated_cfg, plain_cfg = _gate_cfg(), MonitorConfig.model_validate(BASE)
    plain = Harness(demo_checkpoint, plain_cfg, monkeypatch)
    try:
        ungated = plain.run(footage)
    finally:
        plain.close()
    gated_run = Harness(demo_checkpoint, gated_cfg, monkeypatch)
    try:
        gated = gated_run.run(footage)
        beat, metrics = gated_run.heartbeat()
        gate = gated_run.loop.gate
    finally:
        gated_run.close()
    for cam in CAMERAS:
        a = np.array([m.score for m in ungated[cam]])
        b = np.array([m.score for m in gated[cam]])
        assert [m.snippet_index for m in gated[cam]] == list(range(SNIPPETS))
        reused = gate.camera(cam).reused
        print(f"{cam}: reused {reused}/{SNIPPETS} ({reused / SNIPPETS:.0%}), "
              f"max |gated - ungated| {np.abs(a - b).max():.4f}, "
              f"threshold {gate.camera(cam).threshold(gate.settings)}")  # fmt: skip
        assert np.abs(a - b).max() <= 0.01, cam
        assert beat[cam].gate_reused == reused and beat[cam].gate_encoded == SNIPPETS - reused
        assert metrics[cam] == reused  # counted per camera on /metrics too
        # a real change is never gated away: an event exactly as ungated
        assert _events(gated_cfg, cam, gated[cam]) == _events(plain_cfg, cam, ungated[cam])
    assert gate.camera("static").reused >= 0.7 * SNIPPETS  # most of a static scene is skipped
    # the pause is reused, the frame after it and every flash snippet are encoded
    paused = set(gated_run.encoded_at["paused"])
    assert len(set(PAUSE) - paused) >= 15 and {PAUSE.stop, *PAUSED_FLASH} <= paused
    assert set(STREET_FLASH) <= set(gated_run.encoded_at["street"])
    for cam, flash in (("street", STREET_FLASH), ("paused", PAUSED_FLASH)):
        first = _events(gated_cfg, cam, gated[cam])[0]  # after the default min_duration_s
        assert first.startswith("start@") and int(first.split("@")[1]) in flash, first


@pytest.fixture(scope="module")
def tiny_encoder() -> SnippetEncoder:
    return SnippetEncoder(create_clip("vadmon-tiny"))


def _reused(cfg: MonitorConfig, frames: list[np.ndarray], encoder: SnippetEncoder) -> list[int]:
    """Indices of the frames (one camera, one per snippet) the gate of ``cfg`` reused."""
    gate = ChangeGate(gate_settings(cfg))
    out = []
    for i, frame in enumerate(frames):
        msg = SnippetMessage("cam", i, 0.0, 1.0, "", frame.shape[0], frame.shape[1], [0], [i])
        before = gate.camera("cam").reused
        emb = gate.encode([(msg, [frame])], encoder.encode)
        assert emb.shape == (1, encoder.encode([[frame]]).shape[1])
        if gate.camera("cam").reused > before:
            out.append(i)
    return out


def test_warmup_pairs_and_max_reuse_decide_when_a_static_scene_is_reused(footage, tiny_encoder):
    static = footage["static"][:14]
    assert _reused(_gate_cfg(warmup_pairs=3, max_reuse=4), static, tiny_encoder) == [
        3, 4, 5, 6, 8, 9, 10, 11, 13,
    ]  # fmt: skip
    assert _reused(_gate_cfg(warmup_pairs=6, max_reuse=25), static, tiny_encoder) == list(
        range(6, 14)
    )


def _patched(frame: np.ndarray, delta: int, rows: int) -> np.ndarray:
    """``frame`` with its top ``rows`` rows brighter by ``delta`` grey levels."""
    out = frame.astype(np.int16)
    out[:rows] += delta
    return np.clip(out, 0, 255).astype(np.uint8)


def test_thresholds_noise_factor_min_delta_and_changed_fraction(footage, tiny_encoder):
    static = footage["static"][:5]  # warm-up of 3 pairs, then the frame under test at index 4

    def reused(change: np.ndarray, **keys) -> bool:
        cfg = _gate_cfg(warmup_pairs=3, **keys)
        return 4 in _reused(cfg, [*static[:4], change], tiny_encoder)

    base = static[4]
    wide_small = _patched(base, 6, 120)  # a fifth of the image 6 levels brighter
    assert not reused(wide_small) and reused(wide_small, min_pixel_delta=10.0)
    faint = _patched(base, 2, 120)  # 2 levels: above 6 × this camera's floor (~0.15), not 20 ×
    assert not reused(faint, min_pixel_delta=0.1)
    assert reused(faint, min_pixel_delta=0.1, noise_factor=20.0)
    strip = _patched(base, 80, 12)  # a bright strip: 1 row of the 64x48 thumbnail (2 %)
    assert not reused(strip) and reused(strip, max_changed_fraction=0.05)
