"""Issue 11, "faults not contained", inference side: a real inference process (demo model) fed
over its real ipc sockets by this test, which plays the capture process.

- a snippet naming a slot the ring does not have, or a ring that vanished, is dropped and
  counted; the process keeps scoring (before: ``RingError`` crashed it);
- a camera's new ring (restart / resolution change) releases the old mapping (before: every
  old ring stayed mapped, ~200 MB each at 1080p);
- after one over-size message the connecting PULL reconnects (before: libzmq 4.3.5 never
  reconnected it and the camera was cut off until a restart).
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import zmq
from capture_support import wait_for
from monitor_support import REPO, short_dir, write_config

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


def mapped(pid: int, name: str) -> bool:
    return name in Path(f"/proc/{pid}/maps").read_text()


@pytest.mark.slow
def test_bad_ring_references_oversize_and_ring_changes_do_not_stop_inference(
    tmp_path: Path, subprocess_env: dict[str, str], demo_checkpoint: Path
) -> None:
    ipc = short_dir() / "ipc"
    ipc.mkdir(mode=0o700)
    cfg = write_config(
        tmp_path / "m.yaml", {"cam1": "synthetic:w=64&h=48"}, demo_checkpoint, ipc=ipc
    )
    feeder = Feeder(ipc)
    proc = start_inference(cfg, ipc, subprocess_env)
    ring_a = RingWriter("cam1", 4, H * W * 3)
    ring_b = None
    try:
        assert feeder.until_scored(ring_a), "no score for a good snippet"
        assert mapped(proc.pid, ring_a.name)

        # a slot outside the ring, then a ring that does not exist: dropped, counted, alive
        feeder.snippet(ring_a, slot=999)
        assert feeder.counter("ring_errors", 1)
        feeder.snippet(None)
        assert feeder.counter("ring_errors", 2)
        assert proc.poll() is None
        assert feeder.scored(feeder.snippet(ring_a)), "inference stopped scoring"

        # resolution change: a new ring; the old one's mapping is released
        ring_b = RingWriter("cam1", 4, 2 * H * 2 * W * 3)
        old_name = ring_a.name
        ring_a.close()
        assert feeder.scored(feeder.snippet(ring_b, shape=(2 * H, 2 * W)))
        assert mapped(proc.pid, ring_b.name) and not mapped(proc.pid, old_name)
        assert wait_for(lambda: feeder.read_beats().get("ring_mappings") == 1, 10, 0.1)

        # one over-size message: the connection is dropped and must come back by itself
        feeder.push.send(b"x" * (9 * 1024 * 1024))
        assert feeder.counter("reconnects", 1), feeder.counters
        assert feeder.scored(feeder.snippet(ring_b, shape=(2 * H, 2 * W))), "camera cut off"
        assert proc.poll() is None
    finally:
        err = stop(proc)
        ring_a.close()
        if ring_b is not None:
            ring_b.close()
        feeder.close()
    assert "Traceback" not in err, err[-3000:]
