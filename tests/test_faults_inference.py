"""Faults found by independent testing (issue 20), inference side: the real inference process
(demo model) fed over its real ipc socket by this test, playing the capture process.

Case 8: snippets naming cameras this config does not have are dropped into one counter; they
never create per-camera state (before: 20,000 names grew memory and the heartbeat past 64 KiB).
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from capture_support import wait_for
from inference_faults_support import Feeder, start_inference, stop
from monitor_support import short_dir, write_config

from vadmon.runtime.messages import SnippetMessage
from vadmon.runtime.ring import RingWriter
from vadmon.runtime.transport import send_message

H, W = 48, 64
GHOSTS = 3000


@pytest.mark.slow
def test_unknown_camera_names_are_one_counter_not_state(
    tmp_path: Path, subprocess_env: dict[str, str], demo_checkpoint: Path
) -> None:
    ipc = short_dir() / "ipc"
    ipc.mkdir(mode=0o700)
    cfg = write_config(tmp_path / "m.yaml", {"cam1": "synthetic:w=64&h=48"}, demo_checkpoint,
                       ipc=ipc)  # fmt: skip
    feeder = Feeder(ipc)
    proc = start_inference(cfg, ipc, subprocess_env)
    ring = RingWriter("cam1", 4, H * W * 3)
    beats: list[bytes] = []
    try:
        assert feeder.until_scored(ring), "no score for a good snippet"
        sent = 0
        for i in range(GHOSTS):  # any process of this user may write to the socket
            now = time.time()
            ghost = SnippetMessage(
                camera=f"ghost-{i:05d}", snippet_index=1, t_start=now - 1.6, t_end=now,
                ring=ring.name, height=H, width=W, slots=[0], seqs=[1],
            )  # fmt: skip
            deadline = time.monotonic() + 10
            while not send_message(feeder.push, ghost):  # the socket's queue is full: wait
                assert time.monotonic() < deadline, f"inference stopped reading after {sent}"
                time.sleep(0.002)
            sent += 1

        def counted() -> bool:
            while feeder.beats.poll(0):
                beats.append(feeder.beats.recv_multipart()[-1])
            return bool(beats) and json.loads(beats[-1])["counters"].get("unknown_camera") == sent

        assert wait_for(counted, 30, 0.1), beats[-1:] or "no heartbeat"
        last = json.loads(beats[-1])
        assert set(last["info"]["cameras"]) == {"cam1"} and len(beats[-1]) < 16_384
        assert feeder.scored(feeder.snippet(ring)), "inference stopped scoring cam1"
    finally:
        err = stop(proc)
        ring.close()
        feeder.close()
    assert "Traceback" not in err, err[-3000:]
    assert "naming cameras not in this config" in err
