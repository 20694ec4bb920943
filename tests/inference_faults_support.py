"""Helpers shared by tests (moved from test_inference_faults.py; test modules import only *_support modules)."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import zmq
from capture_support import wait_for
from monitor_support import REPO

from vadmon.runtime.heartbeat import ENV_ENDPOINT, ENV_NAME
from vadmon.runtime.messages import ScoreMessage, SnippetMessage
from vadmon.runtime.ring import RingWriter
from vadmon.runtime.transport import pusher, recv_message, send_message, subscriber

H, W = 48, 64


class Feeder:
    """The capture side of one camera: its PUSH socket, its ring, and what inference says."""

    def __init__(self, ipc: Path) -> None:
        self.ctx = zmq.Context()
        self.push = pusher(self.ctx, f"ipc://{ipc}/snippets-cam1.sock")
        self.scores = subscriber(self.ctx, f"ipc://{ipc}/scores.sock", topics=(b"score",))
        self.beats = self.ctx.socket(zmq.PULL)
        self.beats.bind(f"ipc://{ipc}/beats.sock")
        self.index = 0
        self.seq = 0
        self.counters: dict[str, float] = {}

    def snippet(self, ring: RingWriter | None, shape=(H, W), slot: int | None = None) -> int:
        """Write one frame (when ``ring``) and send a snippet naming it; returns its index."""
        self.index += 1
        self.seq += 1
        name, real_slot = "vadmon-999999-cam1-gone00", 0
        if ring is not None:
            frame = np.full((*shape, 3), self.seq % 255, np.uint8)
            name, real_slot = ring.name, ring.write(frame, self.seq, time.time())

        def send() -> bool:  # dated when it goes out: inference skips snippets older than 4 s
            now = time.time()
            msg = SnippetMessage(
                camera="cam1", snippet_index=self.index, t_start=now - 1.6, t_end=now, ring=name,
                height=shape[0], width=shape[1], slots=[real_slot if slot is None else slot],
                seqs=[self.seq],
            )  # fmt: skip
            return send_message(self.push, msg)

        assert wait_for(send, 240, 0.05), "inference never connected"
        return self.index

    def until_scored(self, ring: RingWriter, timeout_s: float = 240) -> bool:
        """Send good snippets until one is scored (the model loads first; SUB joins late)."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.scored(self.snippet(ring), 3):
                return True
        return False

    def scored(self, index: int, timeout_s: float = 60) -> bool:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            got = recv_message(self.scores, 100)
            if got and isinstance(got[0], ScoreMessage) and got[0].snippet_index >= index:
                return True
            self.read_beats()
        return False

    def read_beats(self) -> dict[str, float]:
        while self.beats.poll(0):
            body = json.loads(self.beats.recv_multipart()[-1])
            self.counters = body.get("counters", {})
        return self.counters

    def counter(self, key: str, at_least: float, timeout_s: float = 20) -> bool:
        return wait_for(lambda: self.read_beats().get(key, 0) >= at_least, timeout_s, 0.1)

    def close(self) -> None:
        self.ctx.destroy(linger=0)


def start_inference(cfg: Path, ipc: Path, env: dict[str, str]) -> subprocess.Popen:
    """The real inference process, its heartbeats to the Feeder's socket."""
    env = {**env, ENV_ENDPOINT: f"ipc://{ipc}/beats.sock", ENV_NAME: "inference"}
    return subprocess.Popen(
        [sys.executable, "-m", "vadmon.inference", "--config", str(cfg)],
        env=env, cwd=REPO, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip


def stop(proc: subprocess.Popen) -> str:
    """SIGTERM the inference process (SIGKILL after 30 s); returns its stderr."""
    proc.terminate()
    try:
        return proc.communicate(timeout=30)[1]
    except subprocess.TimeoutExpired:
        proc.kill()
        return proc.communicate()[1]
