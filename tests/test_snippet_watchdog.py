"""Snippet assembly and the watchdog state machine: pure logic, driven with explicit times."""

from __future__ import annotations

import random

import numpy as np
import pytest
from config_support import snippet_settings, watchdog_settings

from vadmon.capture.snippet import SnippetAssembler, sample_positions
from vadmon.capture.watchdog import Action, CameraState, Watchdog, fingerprint

SHAPE = (240, 320, 3)


def feed(asm: SnippetAssembler, times: list[float], ring: str = "vadmon-1-c-aa") -> list:
    out = []
    for seq, ts in enumerate(times, start=1):
        msg = asm.push(seq, ts, seq % 48, ring, SHAPE)
        if msg is not None:
            out.append(msg)
    return out


def test_sample_positions() -> None:
    assert sample_positions(16, 1) == [8]
    assert sample_positions(16, 2) == [4, 12]
    assert sample_positions(16, 4) == [2, 6, 10, 14]
    assert sample_positions(16, 16) == list(range(16))


def test_snippets_at_source_fps_pick_the_middle_frame() -> None:
    asm = SnippetAssembler("cam", snippet_settings())
    msgs = feed(asm, [100 + i / 10 for i in range(40)])
    assert [m.snippet_index for m in msgs] == [0, 1]
    first, second = msgs
    assert first.seqs == [9] and first.slots == [9]  # 9th frame = position 8 of 1..16
    assert second.seqs == [25]
    assert first.t_start == pytest.approx(100.0) and first.t_end == pytest.approx(101.5)
    assert (first.height, first.width, first.channels) == SHAPE
    assert first.frames_in_snippet == 16


def test_k_samples_are_evenly_spaced() -> None:
    asm = SnippetAssembler("cam", snippet_settings(frames_per_snippet=4))
    (msg,) = feed(asm, [i / 10 for i in range(16)])
    assert msg.seqs == [3, 7, 11, 15]


def test_resampling_a_fast_source_skips_frames() -> None:
    # 30 fps source, 10 fps snippet clock: every third frame is used, a snippet spans 1.6 s
    asm = SnippetAssembler("cam", snippet_settings(fps=10))
    msgs = feed(asm, [i / 30 for i in range(30 * 4)])
    assert len(msgs) == 2
    assert msgs[0].t_end - msgs[0].t_start == pytest.approx(1.5, abs=0.05)
    assert msgs[0].seqs == [1 + 3 * 8]


def test_resampling_a_slow_source_repeats_frames() -> None:
    # 5 fps source, 10 fps clock: each frame fills two ticks
    asm = SnippetAssembler("cam", snippet_settings(fps=10))
    msgs = feed(asm, [i / 5 for i in range(20)])
    assert len(msgs) == 2
    assert msgs[0].seqs == [5]  # tick 8 → 0.8 s → frame 5 (t=0.8)
    assert msgs[0].t_end == pytest.approx(1.6)  # tick 1.5 s takes the first frame after it


def test_ring_change_drops_the_partial_snippet() -> None:
    asm = SnippetAssembler("cam", snippet_settings())
    assert feed(asm, [i / 10 for i in range(10)], ring="vadmon-1-c-aa") == []
    msgs = feed(asm, [1 + i / 10 for i in range(16)], ring="vadmon-1-c-bb")
    assert len(msgs) == 1 and msgs[0].ring == "vadmon-1-c-bb"


def test_bad_snippet_settings() -> None:
    with pytest.raises(ValueError):
        snippet_settings(frames_per_snippet=0)
    with pytest.raises(ValueError):
        snippet_settings(snippet_frames=4, frames_per_snippet=5)


# --- watchdog -------------------------------------------------------------------------------


def frame_thumb(value: int) -> np.ndarray:
    return fingerprint(np.full((48, 64, 3), value, np.uint8))


def test_happy_path_then_stall_then_recovery() -> None:
    wd = Watchdog(watchdog_settings(stall_timeout_s=5, backoff_initial_s=1), random.Random(1))
    assert wd.start(0.0) is Action.CONNECT and wd.state is CameraState.CONNECTING
    assert wd.on_frame(1.0, SHAPE, None) is Action.NONE and wd.state is CameraState.ONLINE
    assert wd.tick(5.9) is Action.NONE
    assert wd.tick(6.1) is Action.DISCONNECT and wd.state is CameraState.STALLED
    assert wd.counters.stalls == 1 and wd.stalls_last_hour(6.1) == 1
    retry = wd.next_attempt_at
    assert 6.1 <= retry <= 7.1
    assert wd.tick(retry + 0.01) is Action.CONNECT and wd.counters.reconnects == 1
    assert wd.on_error(retry + 1, "refused") is Action.DISCONNECT
    assert wd.state is CameraState.OFFLINE and wd.counters.errors == {"stall": 1, "refused": 1}
    assert wd.tick(wd.next_attempt_at) is Action.CONNECT
    assert wd.on_frame(wd.next_attempt_at + 1, SHAPE, None) is Action.NONE
    assert wd.state is CameraState.ONLINE
    assert wd.stalls_last_hour(6.1 + 3601) == 0


def test_backoff_is_full_jitter_capped_and_never_gives_up() -> None:
    wd = Watchdog(watchdog_settings(backoff_initial_s=0.5, backoff_max_s=60), random.Random(7))
    now = 0.0
    wd.start(now)
    delays = []
    for _ in range(200):
        assert wd.on_error(now, "refused") is Action.DISCONNECT
        delays.append(wd.last_backoff_s)
        now = wd.next_attempt_at
        assert wd.tick(now) is Action.CONNECT  # always tries again
    assert all(0 <= d <= 60 for d in delays)
    assert max(delays[:3]) <= 2.0  # 0.5, 1, 2 ceilings at first
    assert max(delays[20:]) > 30  # later ceilings reach the cap
    assert len(set(delays)) == len(delays)  # jittered, not a fixed schedule
    assert wd.counters.reconnects == 200


def test_backoff_resets_once_frames_flow() -> None:
    wd = Watchdog(watchdog_settings(backoff_initial_s=1, backoff_max_s=60), random.Random(3))
    wd.start(0)
    for i in range(10):
        wd.on_error(float(i), "timeout")
        wd.tick(wd.next_attempt_at)
    wd.on_frame(100, SHAPE, None)
    wd.on_error(101, "timeout")
    assert wd.last_backoff_s <= 1.0


def test_connect_timeout() -> None:
    wd = Watchdog(watchdog_settings(connect_timeout_s=3))
    wd.start(0)
    assert wd.tick(2.9) is Action.NONE
    assert wd.tick(3.1) is Action.DISCONNECT and wd.counters.last_error == "timeout"


def test_frozen_image_triggers_reconnect() -> None:
    wd = Watchdog(watchdog_settings(frozen_timeout_s=3, stall_timeout_s=100))
    wd.start(0)
    for i in range(10):  # a moving picture is fine
        assert wd.on_frame(i * 0.5, SHAPE, frame_thumb(i * 20)) is Action.NONE
    t = 5.0
    while t < 7.9:
        assert wd.on_frame(t, SHAPE, frame_thumb(77)) is Action.NONE
        t += 0.5
    assert wd.on_frame(8.1, SHAPE, frame_thumb(77)) is Action.DISCONNECT
    assert wd.counters.frozen == 1 and wd.state is CameraState.STALLED


def test_resolution_change_mid_stream_reconnects_and_new_size_is_accepted() -> None:
    wd = Watchdog(watchdog_settings())
    wd.start(0)
    wd.on_frame(1, SHAPE, None)
    assert wd.on_frame(2, (480, 640, 3), None) is Action.DISCONNECT
    assert wd.counters.resolution_changes == 1
    wd.tick(wd.next_attempt_at)
    assert wd.on_frame(wd.next_attempt_at + 1, (480, 640, 3), None) is Action.NONE
    assert wd.state is CameraState.ONLINE


def test_late_events_after_giving_up_are_ignored() -> None:
    wd = Watchdog(watchdog_settings())
    wd.start(0)
    wd.on_error(1, "refused")
    assert wd.on_frame(1.1, SHAPE, None) is Action.NONE and wd.state is CameraState.OFFLINE
    assert wd.on_error(1.2, "timeout") is Action.NONE
