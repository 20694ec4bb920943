"""The explicit lifecycles (``runtime/lifecycle.py``): child, alert event, outbox event row.

Each table is driven through its real owner (a ``Child``, ``CameraEvents`` on a score
sequence, an ``Outbox`` on SQLite) and a move the table does not list raises."""

from __future__ import annotations

import random
import sqlite3
from enum import StrEnum
from pathlib import Path

import pytest
from config_support import event_settings

from vadmon.alerts.event import CameraEvents
from vadmon.alerts.lifecycle import EVENT_LIFECYCLE, EventPhase, EventRowState
from vadmon.alerts.outbox import Outbox
from vadmon.runtime.child import CHILD_LIFECYCLE, Child, ChildSpec, ChildState, ChildStatus
from vadmon.runtime.lifecycle import IllegalTransition, Transitions
from vadmon.runtime.messages import ScoreMessage

T0 = 1_700_000_000.0


class Light(StrEnum):
    RED = "red"
    GREEN = "green"


def test_a_table_needs_a_row_for_every_state_and_names_only_its_states() -> None:
    with pytest.raises(ValueError, match="without a row"):
        Transitions.of("light", {Light.RED: {Light.GREEN}})
    with pytest.raises(ValueError, match="unknown"):
        Transitions.of("light", {Light.RED: {"blue"}, Light.GREEN: set()})  # type: ignore[arg-type]
    light = Transitions.of("light", {Light.RED: {Light.GREEN}, Light.GREEN: set()})
    assert light.check(Light.RED, Light.GREEN) is Light.GREEN and light.final(Light.GREEN)
    with pytest.raises(IllegalTransition, match="light: green → red is not a transition"):
        light.check(Light.GREEN, Light.RED)


def test_child_lifecycle_allows_restarts_and_refuses_moves_out_of_a_final_state() -> None:
    child = Child(ChildSpec("capture:door", ["true"]), ChildStatus("capture:door"))
    for state in (ChildState.RUNNING, ChildState.BACKOFF, ChildState.RUNNING, ChildState.STOPPING):
        child.to(state)
    child.to(ChildState.STOPPED)
    with pytest.raises(IllegalTransition, match="child: stopped → running"):
        child.to(ChildState.RUNNING)
    assert child.status.state is ChildState.STOPPED  # a refused move changes nothing
    assert all(CHILD_LIFECYCLE.final(s) for s in (ChildState.EXITED, ChildState.FAILED))
    assert not CHILD_LIFECYCLE.allows(ChildState.PENDING, ChildState.STOPPING)


def _score(i: int, value: float) -> ScoreMessage:
    return ScoreMessage("door", i, T0 + i, T0 + i + 1, value, value, ["normal", "Fighting"],
                        [1 - value, value])  # fmt: skip


def test_event_phases_follow_the_scores_and_a_closed_event_cannot_reopen() -> None:
    settings = event_settings(threshold=0.5, hysteresis=0.1, min_duration_s=2.0, cutoff_s=2.0,
                              smoothing="none", cooldown_s=0)  # fmt: skip
    det = CameraEvents("door", settings, random.Random(0))
    phases, kinds = [], []
    for i, value in enumerate([0.9, 0.9, 0.9, 0.1, 0.1, 0.1]):
        kinds += [m.kind for m in det.feed(_score(i, value))]
        phases.append(det.cur.phase if det.cur else None)
    c, o = EventPhase.CANDIDATE, EventPhase.OPEN
    assert phases == [c, o, o, o, None, None] and kinds == ["start", "end"]  # cutoff at i=4
    # a candidate that never lasts min_duration_s is dropped without a message
    assert det.feed(_score(10, 0.9)) == [] and det.cur.phase is c
    assert det.feed(_score(11, 0.1)) == [] and det.cur is None
    with pytest.raises(IllegalTransition, match="event: closed → open"):
        EVENT_LIFECYCLE.check(EventPhase.CLOSED, EventPhase.OPEN)


def test_a_suppressed_event_is_closed_without_a_message() -> None:
    settings = event_settings(threshold=0.5, hysteresis=0.1, min_duration_s=1.0, cutoff_s=1.0,
                              smoothing="none", labels_ignore=("Fighting",))  # fmt: skip
    det = CameraEvents("door", settings, random.Random(0))
    assert det.feed(_score(0, 0.9)) == [] and det.feed(_score(1, 0.9)) == []
    assert det.cur.phase is EventPhase.SUPPRESSED and det.open_event is None
    with pytest.raises(IllegalTransition, match="suppressed → open"):
        det.cur.to(EventPhase.OPEN)
    assert [m for v in (0.1, 0.1, 0.1) for m in det.feed(_score(5, v))] == []
    assert det.cur is None and det.counters["suppressed_ignored"] == 1


def test_outbox_event_rows_move_along_their_table_and_a_refused_move_is_not_stored(
    tmp_path: Path,
) -> None:
    outbox = Outbox(tmp_path / "outbox.db")
    ev = {"id": "e1", "camera": "door", "start_ts": T0, "label": "Fighting"}
    outbox.enqueue(ev, "start", "m1", "{}", ["hook"])
    outbox.record_event(ev, EventRowState.ENDING)
    outbox.enqueue(dict(ev, end_ts=T0 + 5), "end", "m2", "{}", ["hook"], EventRowState.CLOSED)
    with pytest.raises(IllegalTransition, match="outbox event: closed → open"):
        outbox.enqueue(ev, "update", "m3", "{}", ["hook"], EventRowState.OPEN)
    state, data = outbox.event("e1")
    assert state == EventRowState.CLOSED and data["end_ts"] == T0 + 5
    with sqlite3.connect(tmp_path / "outbox.db") as db:  # the refused message was not queued
        assert [r[0] for r in db.execute("SELECT msg_id FROM deliveries ORDER BY rowid")] == [
            "m1",
            "m2",
        ]
    outbox.close()
