"""Snapshots and H.264 clips from real footage (vtest.avi) pushed as PreviewFrames."""

from __future__ import annotations

import time

import av
import cv2
import numpy as np
import pytest
from alerts_support import vtest_jpegs
from browser import play
from config_support import clip_settings

from vadmon.alerts.clip_writer import ClipWriter
from vadmon.alerts.event import Event
from vadmon.runtime.messages import PreviewFrame

T0 = 1_700_000_000.0
FPS = 10.0


@pytest.fixture(scope="module")
def previews(vtest_path):
    """200 real frames (20 s at 10 fps) downscaled and JPEG-encoded like capture does."""
    jpegs = vtest_jpegs(vtest_path, quality=80)
    return [(PreviewFrame("lobby", i, T0 + i / FPS, 144, 192), j) for i, j in enumerate(jpegs)]


def make_event(start: float, peak: float, end: float | None = None) -> Event:
    return Event("1700000008.000000-abc123", "lobby", start, end, 0.0, 0.97, peak, "Fighting",
                 0.9, [("Fighting", 0.9)], "", 4, "vadclip")  # fmt: skip


def decoded(jpeg: bytes) -> np.ndarray:
    return cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)


def nearest_index(img: np.ndarray, previews) -> int:
    diffs = [np.abs(decoded(j).astype(int) - img.astype(int)).mean() for _, j in previews]
    return int(np.argmin(diffs))


def test_snapshot_is_the_frame_nearest_the_peak(tmp_path, previews):
    cw = ClipWriter(clip_settings(tmp_path))
    for frame, jpeg in previews[:110]:
        cw.add(frame, jpeg)
    path = cw.snapshot(make_event(T0 + 8.0, T0 + 9.03))
    assert path is not None and path.endswith("lobby/1700000008.000000-abc123.jpg")
    with open(path, "rb") as fh:
        assert fh.read() == previews[90][1]
    assert not [p for p in (tmp_path / "lobby").iterdir() if p.name.startswith(".")]
    assert cw.snapshot(Event("x", "yard", T0, None, 0, 0, T0, "", 0, [], "", 0, "")) is None
    assert decoded(previews[90][1]).shape == (144, 192, 3)  # full preview resolution
    cw.close()


def test_snapshot_follows_the_peak_to_the_end(tmp_path, previews):
    """At start only the first snippet is known; once the peak moves, the same file shows it."""
    cw = ClipWriter(clip_settings(tmp_path, ring_s=5.0))
    for frame, jpeg in previews[:60]:
        cw.add(frame, jpeg)
    first = cw.snapshot(make_event(T0 + 5.0, T0 + 5.0))
    for frame, jpeg in previews[60:100]:
        cw.add(frame, jpeg)
    later = cw.snapshot(make_event(T0 + 5.0, T0 + 8.0, end=T0 + 9.0))
    assert later == first
    with open(later, "rb") as fh:
        assert fh.read() == previews[80][1]
    for frame, jpeg in previews[100:200]:  # the peak's frame leaves the 5 s ring
        cw.add(frame, jpeg)
    assert cw.snapshot(make_event(T0 + 5.0, T0 + 9.0, end=T0 + 9.0)) == first
    with open(first, "rb") as fh:
        assert fh.read() == previews[80][1]  # kept, not replaced by a frame far from the peak
    assert cw.counters["snapshots"] == 1
    cw.close()


def test_clip_covers_pre_and_post_roll(tmp_path, previews):
    settings = clip_settings(tmp_path, pre_s=5.0, post_s=5.0, ring_s=30.0, finish_grace_s=60.0)
    cw = ClipWriter(settings)
    ev = make_event(T0 + 8.0, T0 + 9.0)
    for frame, jpeg in previews[:105]:  # the event is confirmed 2.5 s after it started
        cw.add(frame, jpeg)
    cw.begin(ev)
    for frame, jpeg in previews[105:125]:
        cw.add(frame, jpeg)
    ev_end = make_event(T0 + 8.0, T0 + 9.0, end=T0 + 12.0)
    cw.end(ev_end)
    ready = []
    for frame, jpeg in previews[125:]:
        cw.add(frame, jpeg)
        ready += cw.poll(now=frame.ts)  # wall clock = camera clock here
        if ready:
            break
    deadline = time.monotonic() + 30
    while not ready and time.monotonic() < deadline:
        ready = cw.poll(now=frame.ts)
        time.sleep(0.02)
    ((event, path),) = ready
    assert event.end_ts == T0 + 12.0 and path.endswith("lobby/1700000008.000000-abc123.mp4")
    with av.open(path) as container:
        stream = container.streams.video[0]
        assert stream.codec_context.name == "h264"
        assert stream.codec_context.pix_fmt == "yuv420p"  # what browsers decode
        duration = container.duration / av.time_base
    assert duration == pytest.approx(14.1, abs=0.05)  # 141 frames at 10 fps
    browser = play(path)
    assert browser["tag"] == "loadeddata" and browser["readyState"] >= 2, browser
    assert browser["duration"] == pytest.approx(duration, rel=0.10)
    assert (browser["width"], browser["height"]) == (192, 144)
    cap = cv2.VideoCapture(path)
    frames = []
    while True:
        ok, img = cap.read()
        if not ok:
            break
        frames.append(img)
    fps = cap.get(cv2.CAP_PROP_FPS)
    cap.release()
    # from start - pre (T0+3, frame 30) to end + post (T0+17, frame 170) inclusive
    assert len(frames) == 141
    assert fps == pytest.approx(FPS, rel=0.01)
    assert frames[0].shape == (144, 192, 3)
    assert nearest_index(frames[0], previews) == 30
    assert nearest_index(frames[70], previews) == 100
    assert nearest_index(frames[-1], previews) == 170
    cw.close()


def test_clip_is_finished_after_grace_when_frames_stop(tmp_path, previews):
    cw = ClipWriter(clip_settings(tmp_path, pre_s=1.0, post_s=5.0, finish_grace_s=1.0))
    for frame, jpeg in previews[:50]:
        cw.add(frame, jpeg)
    ev = make_event(T0 + 3.0, T0 + 3.5, end=T0 + 4.0)
    cw.begin(ev)
    cw.end(ev)
    assert cw.poll(now=T0 + 5.0) == []  # still waiting for post-roll frames
    deadline = time.monotonic() + 30
    ready = []
    while not ready and time.monotonic() < deadline:
        ready = cw.poll(now=T0 + 10.5)  # camera went silent: grace elapsed
        time.sleep(0.02)
    ((event, path),) = ready
    cap = cv2.VideoCapture(path)
    assert int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == 30  # frames 20..49 (T0+2 .. T0+4.9)
    cap.release()
    assert event.clip_gaps == [[T0 + 4.9, T0 + 9.0]]  # the silent end is marked, not filled
    assert event.to_dict()["clip_gaps"] == event.clip_gaps
    cw.close()


def test_a_gap_inside_the_clip_is_marked(tmp_path, previews):
    """Frames lost on the way (a link outage) leave a marked hole; nothing is invented."""
    cw = ClipWriter(clip_settings(tmp_path, pre_s=1.0, post_s=1.0, finish_grace_s=0.0))
    ev = make_event(T0 + 2.0, T0 + 2.5, end=T0 + 12.0)
    for frame, jpeg in previews[:130]:
        if frame.ts == T0 + 2.0:
            cw.begin(ev)
        if not 50 <= frame.seq < 90:  # 4 s missing
            cw.add(frame, jpeg)
    cw.end(ev)
    deadline = time.monotonic() + 30
    ready = []
    while not ready and time.monotonic() < deadline:
        ready = cw.poll(now=T0 + 20.0)
        time.sleep(0.02)
    ((event, path),) = ready
    assert event.clip_gaps == [[T0 + 4.9, T0 + 9.0]]
    with av.open(path) as container:
        # pre-roll from T0+1 (frame 10) to the end of the previews (129), less the 40 lost
        assert sum(1 for _ in container.decode(video=0)) == 120 - 40
    cw.close()


def test_frames_beyond_post_roll_are_trimmed(tmp_path, previews):
    """The end is known only after the cutoff: frames already buffered past end+post are cut."""
    cw = ClipWriter(clip_settings(tmp_path, pre_s=1.0, post_s=2.0, finish_grace_s=0.0))
    for frame, jpeg in previews[:50]:
        cw.add(frame, jpeg)
    ev = make_event(T0 + 2.0, T0 + 2.5)
    cw.begin(ev)
    for frame, jpeg in previews[50:150]:
        cw.add(frame, jpeg)
    cw.end(make_event(T0 + 2.0, T0 + 2.5, end=T0 + 3.0))
    (_, path), *_ = cw.flush()
    cap = cv2.VideoCapture(path)
    assert int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == 41  # frames 10..50 (T0+1 .. T0+5)
    cap.release()
    cw.close()


def test_clip_keeps_the_time_irregular_previews_span(tmp_path, previews):
    """Previews decimated unevenly (a busy camera): the clip lasts as long as they cover."""
    kept = [p for i, p in enumerate(previews[:100]) if i % 3 and i % 7]  # gaps of 0.2-0.3 s
    cw = ClipWriter(clip_settings(tmp_path, pre_s=0.0, post_s=0.0, finish_grace_s=0.0))
    ev = make_event(T0, T0 + 1.0)
    cw.begin(ev)
    for frame, jpeg in kept:
        cw.add(frame, jpeg)
    cw.end(make_event(T0, T0 + 1.0, end=kept[-1][0].ts))
    (_, path), *_ = cw.flush()
    with av.open(path) as container:
        pts = [float(f.time) for f in container.decode(video=0)]
    assert len(pts) == len(kept)
    assert pts == pytest.approx([f.ts - kept[0][0].ts for f, _ in kept], abs=0.002)
    cw.close()
