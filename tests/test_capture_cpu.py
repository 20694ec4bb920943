"""What the capture CPU cuts (issue 24) keep: exact snippet frames, previews at their rate,
frozen cameras still found, and decoded frames never overwritten while the loop uses them."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from pathlib import Path

import cv2
import numpy as np
import pytest
import zmq
from config_support import monitor_config, watchdog_settings

from tests.capture_support import Capture, capture_runs, wait_for
from vadmon import settings
from vadmon.capture.frame import SourceReader
from vadmon.capture.process import CaptureLoop
from vadmon.capture.snippet import SnippetAssembler
from vadmon.capture.source import FileSource
from vadmon.capture.watchdog import Action, CameraState, Watchdog, fingerprint
from vadmon.runtime.messages import SnippetMessage
from vadmon.runtime.ring import RingReader
from vadmon.runtime.transport import (
    close_socket,
    ipc_endpoint,
    publisher,
    puller,
    pusher,
    recv_message,
)

SHAPE = (36, 64, 3)


def frames(count: int) -> list[np.ndarray]:
    """Distinct pictures: a bar that moves and a grey level per frame."""
    out = []
    for i in range(count):
        frame = np.full(SHAPE, (i * 5) % 250, np.uint8)
        frame[:, (i * 3) % 60 : (i * 3) % 60 + 4] = (0, 0, 255)
        out.append(frame)
    return out


def write_mjpg(path: Path, pictures: list[np.ndarray]) -> Path:
    out = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 25.0, SHAPE[1::-1])
    assert out.isOpened()
    for picture in pictures:
        out.write(picture)
    out.release()
    return path


@pytest.fixture()
def loop(tmp_path: Path) -> Iterator[Callable[..., tuple[CaptureLoop, zmq.Socket]]]:
    """A real ``CaptureLoop`` on real ipc sockets, its snippet PULL connected."""
    ctx = zmq.Context()
    made: list[tuple[CaptureLoop, zmq.Socket, zmq.Socket, zmq.Socket]] = []

    def make(fps: float | None = None, **model: int) -> tuple[CaptureLoop, zmq.Socket]:
        cameras = {"cam": {"source": "synthetic:", "fps": fps}}
        cfg = monitor_config(tmp_path, cameras=cameras, model=model)
        s = dataclasses.replace(settings.capture_settings(cfg, "cam"), hold_snippets=0)
        n = len(made)
        pub = publisher(ctx, ipc_endpoint(tmp_path, f"pub{n}"))
        push = pusher(ctx, ipc_endpoint(tmp_path, f"push{n}"))
        pull = puller(ctx, ipc_endpoint(tmp_path, f"push{n}"))
        assert push.poll(5000, zmq.POLLOUT)  # the PULL is connected: no snippet is refused
        capture = CaptureLoop(s, pub, push)
        made.append((capture, pub, push, pull))
        return capture, pull

    yield make
    for capture, pub, push, pull in made:
        capture.close()
        pull.close(linger=0)
        close_socket(push, "")
        close_socket(pub, "")
    ctx.term()


def receive(pull: zmq.Socket, count: int) -> list[SnippetMessage]:
    got: list[SnippetMessage] = []
    while len(got) < count and (item := recv_message(pull, 5000)) is not None:
        assert isinstance(item[0], SnippetMessage)
        got.append(item[0])
    return got


@pytest.mark.parametrize(
    ("fps", "model", "snippets"),
    [
        (None, {}, 3),
        (None, {"frames_per_snippet": 4}, 3),
        (10, {}, 1),
        (50, {"frames_per_snippet": 2}, 5),
    ],
    ids=["k1", "k4", "clock-skips", "clock-repeats"],
)
def test_snippets_carry_exactly_the_picked_frames_and_only_those_are_copied(
    loop: Callable[..., tuple[CaptureLoop, zmq.Socket]],
    fps: float | None,
    model: dict[str, int],
    snippets: int,
) -> None:
    """Only frames a snippet hands on go into the ring, so the ring must get every one of
    them: the same picks as when every frame had a slot, read back bit-exact."""
    capture, pull = loop(fps, **model)
    pictures = frames(48)
    for i, picture in enumerate(pictures):
        capture._publish_frame(picture, 1000.0 + i / 25, 50.0 + i / 25)
    msgs = receive(pull, snippets)
    reference = SnippetAssembler("cam", capture.settings.snippet)
    expected = [m for i in range(48) if (m := reference.push(i + 1, 1000.0 + i / 25, i,
                                                            "r", (36, 64, 3)))]  # fmt: skip
    assert [m.seqs for m in msgs] == [m.seqs for m in expected] and len(msgs) == snippets
    with RingReader(msgs[0].ring) as reader:
        for msg in msgs:
            for slot, seq in zip(msg.slots, msg.seqs, strict=True):
                got = reader.read(slot, seq)
                assert got is not None and np.array_equal(got, pictures[seq - 1])
        written = {reader.info(s).seq for s in range(reader.slots)} - {2**64 - 1}
    picked = {seq for m in msgs for seq in m.seqs}
    # no unpicked frame is copied; at most the unfinished snippet's picks are there besides
    assert (
        picked <= written
        and len(written - picked) < capture.settings.snippet.frames_per_snippet + 1
    )


def test_ring_keeps_a_picked_frame_for_ring_slots_snippets(
    loop: Callable[..., tuple[CaptureLoop, zmq.Socket]],
) -> None:
    """32 slots hold 32 picked frames (≈ 20 s at k=1), not 32 frames (1.3 s): inference can
    still read a snippet's frame long after the snippet completed."""
    capture, pull = loop()
    pictures = frames(16 * 20)
    for i, picture in enumerate(pictures):
        capture._publish_frame(picture, 2000.0 + i / 25, 80.0 + i / 25)
    first = receive(pull, 1)[0]
    with RingReader(first.ring) as reader:
        got = reader.read(first.slots[0], first.seqs[0])
    assert got is not None and np.array_equal(got, pictures[first.seqs[0] - 1])


def test_previews_keep_their_rate_and_full_size(
    loop: Callable[..., tuple[CaptureLoop, zmq.Socket]],
) -> None:
    capture, _ = loop()
    for i, picture in enumerate(frames(50)):  # 2 s at 25 fps; previews at 5/s
        capture._publish_frame(picture, 3000.0 + i / 25, 100.0 + i * 0.04)
    assert capture.counters.previews == 10


def test_frozen_check_samples_thumbnails_and_still_finds_a_freeze() -> None:
    """One thumbnail per ``frozen_check_s``, not per frame; a freeze is found at most that
    much later than a per-frame check would."""
    wd = Watchdog(watchdog_settings(frozen_timeout_s=3, stall_timeout_s=100))
    check = wd.settings.frozen_check_s
    assert 0 < check < 1
    wd.start(0.0)
    still = fingerprint(np.full(SHAPE, 77, np.uint8))
    thumbs, t, action = 0, 0.0, Action.NONE
    while action is Action.NONE and t < 10:
        t += 0.04
        thumb = still if wd.wants_thumb(t) else None
        thumbs += thumb is not None
        action = wd.on_frame(t, SHAPE, thumb)
    assert action is Action.DISCONNECT and wd.state is CameraState.STALLED
    assert 3.0 <= t <= 3.0 + check + 0.08  # the first thumb starts the 3 s
    assert thumbs <= t / check + 2 < t / 0.04 / 4  # a few per second, not 25
    off = Watchdog(watchdog_settings(frozen_timeout_s=0))
    assert not off.wants_thumb(1.0)


def test_reader_recycles_frames_and_never_touches_the_one_taken(tmp_path: Path) -> None:
    pictures = frames(60)
    video = write_mjpg(tmp_path / "v.avi", pictures)
    cap = cv2.VideoCapture(str(video), cv2.CAP_FFMPEG)
    decoded = [cap.read()[1] for _ in range(60)]  # fresh arrays: what each frame must be
    cap.release()
    reader = SourceReader(FileSource(video, loop=True, realtime=False))
    reader.start()
    taken: list[np.ndarray] = []  # kept alive: distinct objects have distinct ids
    try:
        for _ in range(12):
            item = reader.take(5.0)
            assert isinstance(item, tuple), item
            frame = item[0]
            copy = frame.copy()
            skipped = reader.skipped
            # the reader decodes (and drops) several frames meanwhile: none of them into ours
            assert wait_for(lambda s=skipped: reader.skipped >= s + 3, 10)
            assert np.array_equal(frame, copy)
            assert any(np.array_equal(copy, d) for d in decoded)
            taken.append(frame)
    finally:
        reader.stop()
    assert len({id(f) for f in taken}) <= 3  # recycled, not one fresh 640×360 array a frame


@pytest.fixture()
def capture(subprocess_env: dict[str, str]) -> Iterator[Callable[..., Capture]]:
    yield from capture_runs(subprocess_env)


def test_a_frozen_file_camera_is_still_reconnected(
    capture: Callable[..., Capture], tmp_path: Path
) -> None:
    """End to end through the capture process: identical frames for ``frozen_timeout_s``."""
    video = write_mjpg(tmp_path / "still.avi", [frames(1)[0]] * 50)
    run = capture("still", str(video), {"loop": True, "frozen_timeout_s": 1})
    assert wait_for(lambda: run.statuses and run.last().counters.frozen >= 1, 20), run.output()
