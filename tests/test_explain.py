"""Event explanations: class ranking, score curve and CLIP phrase evidence, end to end."""

from __future__ import annotations

import json
import time

import pytest
import torch
from config_support import event_settings
from explain_support import CLASSES, SECRET, drive, feed_event, pipeline, score, write_config
from webhook_receiver import Receiver

from vadmon.alerts.event import EventTracker
from vadmon.inference.phrases import TEMPLATE, PhraseBank
from vadmon.runtime.messages import MessageError, ScoreMessage, decode


def test_explanation_names_class_timing_and_phrases() -> None:
    tracker = EventTracker(event_settings(threshold=0.5, min_duration_s=1.0, cutoff_s=1.0))
    t0 = 1_700_000_000.0
    out = []
    # fighting leads at first, explosion takes over; the score peaks at snippet 6
    for i in range(16):
        hot = 2 <= i < 10
        probs = [0.1, 0.6, 0.2, 0.1] if i < 5 else [0.1, 0.1, 0.7, 0.1]
        value = {6: 0.99}.get(i, 0.8) if hot else 0.1
        phrases = [("a car on fire", 0.6), ("smoke", 0.3)] if i == 6 else [("people fighting", 0.5)]
        out += tracker.feed(score(i, t0, value, probs if hot else [0.9, 0.05, 0.03, 0.02], phrases))
    end = [m for m in out if m.kind == "end"][-1].event
    why = end.explanation
    assert end.label == "explosion"
    assert why["text"].startswith("Explosion (")
    assert "took over" in why["text"] or "up from" in why["text"]
    assert f"stayed above 0.50 for {end.duration_s:.1f} s" in why["text"]
    rise = end.peak_ts - end.start_ts
    assert end.peak_ts == pytest.approx(t0 + 3.25)  # the middle of snippet 6
    assert f"peaked at 0.99 {rise:.1f} s after onset" in why["text"]
    assert "“a car on fire” (0.60)" in why["text"]
    kinds = [e["kind"] for e in why["evidence"]]
    assert kinds.count("class") == 3 and kinds.count("score") == 1 and kinds.count("phrase") == 2
    top = why["evidence"][0]
    assert top["name"] == "explosion" and top["prob_at_start"] < top["prob"]
    score_ev = next(e for e in why["evidence"] if e["kind"] == "score")
    assert score_ev["peak"] == pytest.approx(0.99, abs=1e-6)
    assert score_ev["peak_after_s"] == pytest.approx(rise, abs=0.01)


def test_phrase_bank_finds_the_phrase_an_embedding_points_at() -> None:
    from open_clip import tokenize

    from vadmon.model.clip_factory import create_clip

    clip = create_clip("vadmon-tiny")
    phrases = ["smoke", "a car on fire", "people running", "an empty street"]
    bank = PhraseBank(clip, phrases, top_k=2)
    with torch.inference_mode():
        text = clip.encode_text(tokenize([TEMPLATE.format(p) for p in phrases])).float()
    matches = bank.match(text[[2, 0]] * 3.0)  # scale must not matter: cosine
    assert [m[0][0] for m in matches] == ["people running", "smoke"]
    assert all(len(m) == 2 and m[0][1] >= m[1][1] for m in matches)
    assert all(0 <= p <= 1 for m in matches for _, p in m) and matches[0][0][1] > 0.5
    assert PhraseBank(clip, [], top_k=3).match(text) == [[] for _ in phrases]


def test_phrase_bank_follows_the_explain_config(tmp_path) -> None:
    from vadmon.config import load_config
    from vadmon.model.clip_factory import create_clip

    clip = create_clip("vadmon-tiny")
    cfg = load_config(write_config(tmp_path, "explain: {phrases: [smoke, a dog], top_k: 1}\n"))
    bank = PhraseBank.from_config(cfg.explain, clip)
    assert bank.phrases == ["smoke", "a dog"]
    assert [len(m) for m in bank.match(torch.randn(3, 64))] == [1, 1, 1]
    off = load_config(write_config(tmp_path, "explain: {phrases: []}\n"))
    assert PhraseBank.from_config(off.explain, clip).match(torch.randn(2, 64)) == [[], []]
    default = load_config(write_config(tmp_path))
    assert len(PhraseBank.from_config(default.explain, clip).match(torch.randn(1, 64))[0]) == 3


def test_score_message_phrases_are_validated_and_bounded() -> None:
    good = score(0, 0.0, 0.5, [0.25] * 4, [("smoke", 0.4)])
    assert decode(good.to_parts())[0].phrases == ["smoke"]
    for bad in (
        {"phrases": ["a"], "phrase_probs": []},
        {"phrases": ["a"] * 17, "phrase_probs": [0.1] * 17},
        {"phrases": ["x" * 201], "phrase_probs": [0.1]},
        {"phrases": ["a"], "phrase_probs": [1.5]},
    ):
        data = dict(json.loads(good.header()), **bad)
        with pytest.raises(MessageError):
            decode([ScoreMessage.topic, json.dumps(data).encode()])


def test_webhooks_and_events_cli_carry_the_explanation(tmp_path, subprocess_env) -> None:
    import subprocess
    import sys

    with Receiver([SECRET]) as rx:
        pipe = pipeline(write_config(tmp_path, webhook=rx.url))
        try:
            feed_event(pipe, time.time() - 20, range(5, 15))
            drive(pipe, lambda: len(rx.verified()) >= 2)
        finally:
            pipe.shutdown()
    kinds = {r.json["type"]: r.json["data"] for r in rx.verified()}
    assert {"vadmon.event.start", "vadmon.event.end"} <= set(kinds)
    for data in kinds.values():
        text = data["explanation"]["text"]
        assert text.startswith("Explosion (") and "“fire” (0.70)" in text
    db = tmp_path / "data" / "outbox.sqlite"
    out = subprocess.run(
        [sys.executable, "-m", "vadmon", "events", "--db", str(db)],
        capture_output=True,
        text=True,
        env=subprocess_env,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    assert "text: Explosion (" in out.stdout
    assert CLASSES[2] in out.stdout
