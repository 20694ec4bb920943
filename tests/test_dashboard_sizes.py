"""The dashboard at 80×24, 120×40 and 200×60 (a rich Console of fixed size, as the live view
draws it): columns go whole by priority and no word is ever cut in half."""

from __future__ import annotations

import re

import pytest
from dashboard_support import EVENTS, alerts_fields, example_state, feed, record
from rich.cells import cell_len

LONG_WHY = "a person lying on the ground near the door while two others run towards the exit"
CUT = re.compile(r"\w…")  # an ellipsis glued to a letter: a word cut in half


def state_with_explanations():
    state = example_state()
    events = [dict(EVENTS[0], text=LONG_WHY), EVENTS[1]]
    feed(state, "alerts", alerts_fields(events, [0.12, 0.08]))
    return state


@pytest.mark.parametrize(("width", "height"), [(80, 24), (120, 40), (200, 60)])
def test_no_word_is_cut_at_any_size(width, height, capsys):
    text = record(state_with_explanations(), width=width, height=height)
    plain = re.sub(r"\x1b\[[0-9;]*m", "", text)
    with capsys.disabled():
        print(f"\n--- {width}x{height} ---\n{plain}")
    lines = plain.splitlines()
    assert len(lines) <= height and max(cell_len(x) for x in lines) <= width
    assert not CUT.findall(plain), [x for x in lines if CUT.search(x)]
    events = next(x for x in lines if "time" in x and "camera" in x)
    # the most important columns stay at every size; the rest go whole, never as fragments
    for column in ("time", "camera", "label", "state"):
        assert f" {column}" in events or events.lstrip("│ ").startswith(column)
    assert "timeout, retry in 4 s" in plain  # the camera's reason is never cut mid-word
    assert "delivered 17" in plain and "dead      1" in plain
    if width >= 120:
        assert "prob" in events and "dur" in events and "why" in events
        assert "a person lying on the ground" in plain
    if width >= 200:
        assert "lat ms" in plain and "alert lat 0.10s" in plain
