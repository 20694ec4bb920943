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

from pathlib import Path

import pytest
from capture_support import wait_for
from inference_faults_support import Feeder, H, W, start_inference, stop
from monitor_support import short_dir, write_config

from vadmon.runtime.ring import RingWriter


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
