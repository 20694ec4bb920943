"""Event logic on score sequences whose expected events follow from the definitions."""

from __future__ import annotations

import random
import re
from datetime import datetime

import pytest
from config_support import event_settings

from vadmon.alerts.event import CameraEvents, EventSettings, EventTracker, Smoother, describe
from vadmon.runtime.messages import ScoreMessage

T0 = 1_700_000_000.0
CLASSES = ["normal", "Fighting", "Abuse", "Explosion"]


def score(i: int, value: float, probs: tuple[float, ...] = (0.1, 0.7, 0.15, 0.05), cam="lobby"):
    """Snippet i covers [T0+i, T0+i+1)."""
    return ScoreMessage(
        camera=cam,
        snippet_index=i,
        t_start=T0 + i,
        t_end=T0 + i + 1,
        score=value,
        fine=1 - probs[0],
        class_names=list(CLASSES),
        class_probs=list(probs),
    )


def run(values, settings: EventSettings, probs=None, start_index: int = 0, det=None):
    det = det or CameraEvents("lobby", settings, random.Random(0))
    out = []
    for j, v in enumerate(values):
        i = start_index + j
        msg = score(i, v) if probs is None else score(i, v, probs[j])
        out += [(i, m) for m in det.feed(msg)]
    return det, out


BASE = dict(threshold=0.5, hysteresis=0.1, min_duration_s=2.0, cutoff_s=2.0, smoothing="none",
            smoothing_alpha=0.5, labels_ignore=())  # fmt: skip


def test_open_after_min_duration_and_close_after_cutoff():
    s = event_settings(**BASE, cooldown_s=0)
    _, out = run([0.1] * 3 + [0.9] * 5 + [0.1] * 5, s)
    kinds = [(i, m.kind) for i, m in out]
    # above from snippet 3 (t_start T0+3); min duration 2 s reached at t_end of snippet 4
    # below from snippet 8 (t_start T0+8); cutoff 2 s reached at t_end of snippet 9
    assert kinds == [(4, "start"), (9, "end")]
    start, end = out[0][1].event, out[1][1].event
    assert start.id == end.id and re.fullmatch(r"\d+\.\d{6}-[a-z0-9]{6}", start.id)
    assert start.start_ts == T0 + 3 and start.end_ts is None
    assert end.end_ts == T0 + 8 and end.duration_s == pytest.approx(5.0)
    assert end.label == "Fighting" and end.label_prob == pytest.approx(0.7)
    assert [n for n, _ in end.top3] == ["Fighting", "Abuse", "Explosion"]


def test_short_burst_below_min_duration_is_ignored():
    s = event_settings(**BASE)
    _, out = run([0.1, 0.9, 0.1, 0.9, 0.1, 0.1], s)
    assert out == []


def test_hysteresis_band_keeps_event_open():
    s = event_settings(**BASE)
    # 0.45 is below threshold but above threshold - hysteresis (0.4): event must stay open
    _, out = run([0.9] * 3 + [0.45] * 10, s)
    assert [m.kind for _, m in out] == ["start"]
    _, out = run([0.9] * 3 + [0.35] * 10, s)
    assert [m.kind for _, m in out] == ["start", "end"]


def test_dip_shorter_than_cutoff_does_not_close():
    s = event_settings(**BASE)
    _, out = run([0.9] * 3 + [0.1] + [0.9] * 3 + [0.1] * 4, s)
    # below again from snippet 7 (t_start T0+7): cutoff reached at t_end of snippet 8
    assert [(i, m.kind) for i, m in out] == [(1, "start"), (8, "end")]
    assert out[1][1].event.end_ts == T0 + 7


def test_cooldown_per_label():
    s = event_settings(**BASE, cooldown_s=30.0)
    burst = [0.9] * 4 + [0.1] * 3
    det, out = run(burst + [0.1] * 5 + burst, s)  # second burst starts 8 s after first end
    assert [m.kind for _, m in out] == ["start", "end"]
    assert det.counters["suppressed_cooldown"] == 1
    # a different label is not in cooldown
    other = (0.1, 0.1, 0.1, 0.7)
    probs = [None] * 12 + [other] * 7
    probs = [p or (0.1, 0.7, 0.15, 0.05) for p in probs]
    _, out = run(burst + [0.1] * 5 + burst, s, probs=probs)
    assert [(m.kind, m.event.label) for _, m in out] == [
        ("start", "Fighting"),
        ("end", "Fighting"),
        ("start", "Explosion"),
        ("end", "Explosion"),
    ]
    # same label after the cooldown has passed: alerted again
    _, out = run(burst + [0.1] * 40 + burst, s)
    assert [m.kind for _, m in out] == ["start", "end", "start", "end"]


def test_flood_of_high_scores_gives_one_event_with_bounded_updates():
    s = event_settings(**BASE, update_interval_s=5.0, peak_delta=0.05)
    rng = random.Random(1)
    values = [0.9 + 0.1 * rng.random() for _ in range(1000)]
    probs = [
        (0.05, 0.5 + 0.4 * rng.random(), 0.5 * rng.random(), 0.0) for _ in range(1000)
    ]  # label flickers snippet by snippet
    det, out = run(values, s, probs=probs)
    kinds = [m.kind for _, m in out]
    assert kinds.count("start") == 1
    assert kinds.count("update") <= 1000 / 5.0
    # peak can rise by 0.05 at most twice between 0.9 and 1.0, and the averaged label is stable
    assert kinds.count("update") <= 3


def test_flapping_scores_are_rate_limited():
    s = event_settings(**BASE, cooldown_s=0.0, max_events_per_window=5, rate_window_s=600.0)
    values = ([0.9] * 3 + [0.1] * 3) * 100  # 100 separate bursts over 600 s
    det, out = run(values, s)
    starts = [m for _, m in out if m.kind == "start"]
    assert len(starts) == 5
    assert det.counters["suppressed_rate"] == 95
    assert sum(m.kind == "end" for _, m in out) == 5


def test_label_is_averaged_over_the_event():
    s = event_settings(**BASE)
    probs = [(0.0, 0.9, 0.1, 0.0)] + [(0.0, 0.3, 0.6, 0.1)] * 3 + [(1, 0, 0, 0)] * 3
    _, out = run([0.9] * 4 + [0.1] * 3, s, probs=probs)
    end = out[-1][1].event
    # means over the 6 snippets in the event (4 high + 2 low before cutoff closes it):
    fighting = (0.9 + 0.3 * 3) / 6
    abuse = (0.1 + 0.6 * 3) / 6
    assert end.label == "Abuse" and end.label_prob == pytest.approx(abuse, abs=1e-4)
    assert dict(end.top3)["Fighting"] == pytest.approx(fighting, abs=1e-4)
    assert "normal" not in dict(end.top3)


def test_median_smoothing_rejects_single_spikes():
    s = event_settings(**{**BASE, "smoothing": "median", "min_duration_s": 0.0}, smoothing_window=3)
    _, out = run([0.0, 0.0, 1.0, 0.0, 0.0, 1.0, 0.0], s)
    assert out == []
    assert Smoother("median", 3, 0.5)(0.7) == 0.7


def test_ema_smoothing_definition():
    ema = Smoother("ema", 3, 0.5)
    assert [ema(x) for x in (0.0, 1.0, 1.0)] == [0.0, 0.5, 0.75]
    ema = Smoother("ema", 3, 0.25)
    assert [ema(x) for x in (0.0, 1.0, 1.0)] == [0.0, 0.25, 0.4375]


def test_expire_closes_event_when_scores_stop():
    s = event_settings(**BASE, stale_s=10.0)
    det, out = run([0.9] * 4, s)
    assert [m.kind for _, m in out] == ["start"]
    assert det.expire(T0 + 4 + 5) == []
    ended = det.expire(T0 + 4 + 10)
    assert [m.kind for m in ended] == ["end"] and ended[0].event.end_ts == T0 + 4


def test_text_explanation_and_tracker_routing():
    tracker = EventTracker(event_settings(**BASE), rng=random.Random(2))
    msgs = []
    for i, v in enumerate([0.9, 0.97, 0.9, 0.1, 0.1, 0.1]):
        msgs += tracker.feed(score(i, v))
        msgs += tracker.feed(score(i, 0.0, cam="yard"))
    assert [m.event.camera for m in msgs] == ["lobby", "lobby"]
    end = msgs[-1].event
    clock = datetime.fromtimestamp(T0).strftime("%H:%M:%S")
    peak_clock = datetime.fromtimestamp(T0 + 1.5).strftime("%H:%M:%S")
    assert end.text == describe(end)
    assert end.text == f"Fighting (0.70) on lobby from {clock} for 3.0 s, peak 0.97 at {peak_clock}"
    assert len(tracker.cameras) == 2
