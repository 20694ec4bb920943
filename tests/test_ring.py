"""Shared-memory ring: real processes on both sides, seqlock overwrite detection, lifetimes."""

from __future__ import annotations

import json
import multiprocessing
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

from vadmon.runtime.ring import (
    SHM_DIR,
    CameraRing,
    RingReader,
    RingWriter,
)


def pattern(seq: int, shape: tuple[int, ...]) -> np.ndarray:
    """A frame whose every byte encodes its seq, so torn frames are visible."""
    return np.full(shape, seq % 251, np.uint8)


WRITER_SCRIPT = textwrap.dedent(
    """
    import sys, numpy as np
    from vadmon.runtime.ring import RingWriter
    w = RingWriter("cam", slots=8, slot_bytes=48 * 64 * 3)
    slots = {}
    for seq in range(1, 13):
        frame = np.full((48, 64, 3), seq % 251, np.uint8)
        frame[0, 0, 0] = seq
        slots[seq] = w.write(frame, seq, 1000.0 + seq)
    print(w.name, " ".join(f"{s}:{slot}" for s, slot in slots.items()), flush=True)
    sys.stdin.read()  # stay alive until the parent is done reading
    w.close()
    """
)


def test_round_trip_between_processes(subprocess_env: dict[str, str]) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-c", WRITER_SCRIPT],
        env=subprocess_env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        line = proc.stdout.readline().split()
        name, pairs = line[0], dict(p.split(":") for p in line[1:])
        with RingReader(name) as reader:
            # seqs 1..4 were overwritten by 9..12 in an 8-slot ring
            for seq in range(1, 5):
                assert reader.read(int(pairs[str(seq)]), seq) is None
            for seq in range(5, 13):
                frame = reader.read(int(pairs[str(seq)]), seq)
                assert frame is not None and frame.shape == (48, 64, 3)
                assert frame[0, 0, 0] == seq and frame[5, 5, 1] == seq % 251
                assert reader.info(int(pairs[str(seq)])).ts == 1000.0 + seq
            assert reader.overwritten == 4
    finally:
        out, err = proc.communicate("", timeout=20)
    assert proc.returncode == 0, err
    assert not (SHM_DIR / name).exists(), "writer close must unlink its segment"


READER_SCRIPT = textwrap.dedent(
    """
    import json, sys
    from vadmon.runtime.ring import RingReader
    r = RingReader(sys.argv[1])
    f = r.read(int(sys.argv[2]), int(sys.argv[3]))
    print(json.dumps({"sum": int(f.sum()), "shape": list(f.shape)}))
    r.close()
    """
)


def test_reader_exit_does_not_unlink(subprocess_env: dict[str, str]) -> None:
    with RingWriter("cam", slots=4, slot_bytes=32 * 32 * 3) as writer:
        frame = pattern(7, (32, 32, 3))
        slot = writer.write(frame, 7, 1.0)
        for _ in range(2):  # two readers in a row: the first must not take the segment away
            res = subprocess.run(
                [sys.executable, "-c", READER_SCRIPT, writer.name, str(slot), "7"],
                env=subprocess_env,
                capture_output=True,
                text=True,
                timeout=30,
            )
            assert res.returncode == 0, res.stderr
            assert json.loads(res.stdout) == {"sum": int(frame.sum()), "shape": [32, 32, 3]}
            assert "resource_tracker" not in res.stderr and "leaked" not in res.stderr
            assert (SHM_DIR / writer.name).exists()


def _mp_reader(name: str, slot: int, seq: int, queue: multiprocessing.Queue) -> None:
    reader = RingReader(name)
    frame = reader.read(slot, seq)
    queue.put(None if frame is None else int(frame[0, 0, 0]))
    reader.close()


def test_multiprocessing_child_shares_tracker_without_unlinking() -> None:
    """A spawn child shares the parent's resource tracker: attaching must not touch it."""
    ctx = multiprocessing.get_context("spawn")
    with RingWriter("cam", slots=4, slot_bytes=16) as writer:
        slot = writer.write(pattern(3, (4, 4)), 3, 1.0)
        queue = ctx.Queue()
        child = ctx.Process(target=_mp_reader, args=(writer.name, slot, 3, queue))
        child.start()
        assert queue.get(timeout=30) == 3
        child.join(timeout=30)
        assert child.exitcode == 0
        assert (SHM_DIR / writer.name).exists()
        again = RingReader(writer.name)
        assert again.read(slot, 3) is not None
        again.close()


CONTINUOUS_WRITER = textwrap.dedent(
    """
    import sys, numpy as np
    from vadmon.runtime.ring import RingWriter
    w = RingWriter("cam", slots=2, slot_bytes=1024 * 1024 * 4)
    print(w.name, flush=True)
    frame = np.empty((1024, 1024, 4), np.uint8)
    seq = 1
    import select
    while not select.select([sys.stdin], [], [], 0)[0]:
        frame.fill(seq % 251)
        w.write(frame, seq, float(seq))
        seq += 1
    w.close()
    """
)


def test_overwrite_during_copy_is_detected(subprocess_env: dict[str, str]) -> None:
    """A writer process hammers a 2-slot ring; no copy may ever return a torn frame.

    How often the writer lands inside a copy depends on scheduling (one core, a loaded host), so
    the reader keeps going until it has seen both outcomes enough times, within a deadline,
    instead of for a fixed number of reads.
    """
    proc = subprocess.Popen(
        [sys.executable, "-c", CONTINUOUS_WRITER],
        env=subprocess_env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        name = proc.stdout.readline().strip()
        reader = RingReader(name)
        ok = detected = 0
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            slot = (ok + detected) % 2
            seq = reader.info(slot).seq
            if seq == 2**64 - 1 or seq == 0:
                continue
            frame = reader.read(slot, seq)
            if frame is None:
                detected += 1
                continue
            ok += 1
            values = np.unique(frame[::64, ::64])
            assert values.tolist() == [seq % 251], f"torn frame for seq {seq}: {values[:5]}"
            assert frame[-1, -1, -1] == seq % 251
            if ok >= 20 and detected >= 5:
                break
        reader.close()
        assert ok >= 20, "reader never got a consistent frame"
        assert detected >= 5 and reader.overwritten == detected
    finally:
        proc.communicate("stop\n", timeout=30)


def test_resolution_change_recreates_ring() -> None:
    ring = CameraRing("cam", slots=4)
    try:
        name1, slot1 = ring.write(pattern(1, (24, 32, 3)), 1, 1.0)
        name_small, _ = ring.write(pattern(2, (12, 16, 3)), 2, 2.0)
        assert name_small == name1, "a smaller frame fits the existing slots"
        name2, slot2 = ring.write(pattern(3, (48, 64, 3)), 3, 3.0)
        assert name2 != name1 and ring.recreated == 1
        assert not (SHM_DIR / name1).exists(), "the old segment is unlinked at once"
        with RingReader(name2) as reader:
            frame = reader.read(slot2, 3)
            assert frame is not None and frame.shape == (48, 64, 3)
            assert int(frame[47, 63, 2]) == 3
    finally:
        ring.close()
    assert not (SHM_DIR / name2).exists()


def test_reader_rejects_foreign_names() -> None:
    from vadmon.runtime.ring import RingError

    with pytest.raises(RingError):
        RingReader("../etc/passwd")
    with pytest.raises(RingError):
        RingReader("vadmon-0-missing-000000")
