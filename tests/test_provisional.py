"""Provisional alerts (``alerts.provisional``, issue 26): the lookahead-0 score read from the
window of the final scores, confirmed or withdrawn by the final scores, on every channel.

Real parts: the VadCLIP scorer on a tiny random model, the alert pipeline with real SQLite and
a real HTTP receiver verifying signatures, and (slow) a whole ``vadmon run``.
"""

from __future__ import annotations

import dataclasses
import json
import re
import sqlite3

import pytest
import torch
from alerts_support import events_cli
from capture_support import wait_for
from config_support import event_settings
from monitor_support import Monitor, short_dir, write_config
from retention_support import previews
from webhook_receiver import Receiver
from webhook_support import SECRET, T0, config, hook

from vadmon.alerts.process import AlertPipeline
from vadmon.alerts.signing import generate_secret
from vadmon.config import load_config
from vadmon.inference.provisional import EarlyStreamScorer
from vadmon.inference.scores import Entry, Scored, VadClipStreamScorer
from vadmon.model import VadCLIP, load_preset
from vadmon.research import causal_provisional as cp
from vadmon.runtime.messages import ProvisionalScore, ScoreMessage
from vadmon.settings import alert_settings
from vadmon.web.store import EventQuery, EventStore

CLASSES = ["normal", "Fighting", "Abuse"]
EARLY = ", provisional: {enabled: true, threshold: 0.7}"


@pytest.fixture(scope="module")
def model() -> VadCLIP:
    cfg = load_preset("ucf").model_config(clip_arch="vadmon-tiny", visual_width=64,
                                          visual_length=32)  # fmt: skip
    torch.manual_seed(7)
    return VadCLIP(cfg).eval()


def _feed(scorer, plan: list[tuple[str, int]], emb: dict[tuple[str, int], torch.Tensor]):
    """Feed ``plan`` one snippet at a time (two cameras interleaved, so batches mix them)."""
    finals, early = [], []
    for i in range(0, len(plan), 2):
        batch = [Entry(c, k, emb[c, k], float(k), k + 1.0) for c, k in plan[i : i + 2]]
        finals += scorer.feed(batch)
        early += scorer.take_early() if isinstance(scorer, EarlyStreamScorer) else []
    return finals, early


def test_provisional_scores_are_the_causal_scores_and_finals_stay_exact(model) -> None:
    """Camera a has a short gap (filled) and a long one (new segment); camera b is plain. The
    early scorer's finals equal the plain lookahead-3 scorer's, and its provisional scores the
    lookahead-0 scorer's for every real snippet, read from the same windows."""
    gen = torch.Generator().manual_seed(1)
    a = list(range(20)) + list(range(22, 40)) + list(range(60, 75))
    b = list(range(len(a)))
    plan = [
        x for pair in zip([("a", k) for k in a], [("b", k) for k in b], strict=True) for x in pair
    ]
    emb = {key: torch.randn(64, generator=gen) for key in plan}
    kw = {"window": 24, "max_gap": 3}
    early = EarlyStreamScorer(model, None, lookahead=3, **kw)
    early.early_cameras = frozenset({"a", "b"})
    finals, provisional = _feed(early, plan, emb)
    ref, _ = _feed(VadClipStreamScorer(model, None, lookahead=3, **kw), plan, emb)
    causal, _ = _feed(VadClipStreamScorer(model, None, lookahead=0, **kw), plan, emb)
    key = lambda s: (s.camera, s.index)  # noqa: E731
    assert [key(s) for s in finals] == [key(s) for s in ref]
    # to float rounding: the step's block memo makes the arithmetic depend on which windows ran
    # before (the early scorer runs extra ones), not the math
    assert [s.score for s in finals] == pytest.approx([s.score for s in ref], abs=1e-6)
    for got, exp in zip(finals, ref, strict=True):
        assert got.class_probs == pytest.approx(exp.class_probs, abs=1e-6)
    assert sorted(map(key, provisional)) == sorted(map(key, causal)) and len(causal) == len(plan)
    want = {key(s): s for s in causal}
    for got in provisional:
        assert got.lookahead == 0
        exp = want[key(got)]
        assert got.score == pytest.approx(exp.score, abs=1e-6)
        assert got.class_probs == pytest.approx(exp.class_probs, abs=1e-6)
    off = EarlyStreamScorer(model, None, lookahead=3, **kw)  # no camera asked: none produced
    assert _feed(off, plan, emb)[1] == [] and off.take_early() == []


def _scored(i: int, value: float) -> Scored:
    names = ["normal", "fighting", "shooting"]
    return Scored("eval", i, value, value, [1 - value, value, 0.0], names, "vadclip", 0)


def test_stage_replay_gains_lookahead_plus_confirmation_and_counts_withdrawals() -> None:
    """Lookahead 2 at 25 fps (0.64 s snippets): the provisional of snippet 10 goes out at step
    10; the final event opens from snippet 10 and is confirmed by snippet 11 (min 1 s), whose
    final score comes at step 13: 3 snippets gained. Snippet 25 is high only in its causal
    score: its final score withdraws it."""
    s, d = 16 / 25, 2
    final = [0.9 if 10 <= i < 20 else 0.1 for i in range(40)]
    causal = [v if i != 25 else 0.95 for i, v in enumerate(final)]
    steps = [cp.Step(i, [_scored(i - d, final[i - d])] if i >= d else [], [_scored(i, causal[i])])
             for i in range(40)]  # fmt: skip
    steps.append(cp.Step(39, [_scored(j, final[j]) for j in range(40 - d, 40)], []))
    rules = event_settings(min_duration_s=1.0, smoothing="none", cutoff_s=1.0, cooldown_s=0.0)
    out = cp.Outcome()
    cp.run_stage(steps, CLASSES, rules, 0.7, s, out)
    assert out.gains == pytest.approx([3 * s]) and out.withdrawn == 1
    assert out.summary() == {"provisional_alerts": 2, "confirmed": 1, "withdrawn": 0.5,
                             "gain_median_s": 1.92, "gain_p95_s": 1.92}  # fmt: skip


def _msg(cls, i: int, value: float) -> list[bytes]:
    return cls(camera="lobby", snippet_index=i, t_start=T0 + i, t_end=T0 + i + 1, score=value,
               fine=value, class_names=CLASSES, class_probs=[0.1, 0.8, 0.1]).to_parts()  # fmt: skip


def _run(pipeline: AlertPipeline, final: list[float], causal: list[float], d: int = 2) -> None:
    """Step i: the final score of snippet i - d, then the provisional score of snippet i."""
    for i in range(len(causal)):
        if i >= d:
            pipeline.on_message(_msg(ScoreMessage, i - d, final[i - d]))
        pipeline.on_message(_msg(ProvisionalScore, i, causal[i]))


def test_confirmed_and_withdrawn_reach_a_real_receiver(tmp_path, subprocess_env) -> None:
    """Confirmed: ``provisional`` arrives first, then ``start`` with the same id and
    ``data.provisional``. Withdrawn: same id, ``state: withdrawn``. Both in the outbox."""
    with Receiver([SECRET]) as rx:
        cfg = config(tmp_path, hook("h", rx.url), EARLY + ", cooldown_s: 0")
        pipeline = AlertPipeline(alert_settings(cfg))
        pipeline.start()
        previews(pipeline, 40)
        final = [0.9, 0.9, 0.9, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1]
        causal = [0.9, 0.9, 0.9, 0.1, 0.1, 0.1, 0.95, 0.1, 0.1, 0.1]
        _run(pipeline, final, causal)
        stored = pipeline.outbox.list_events(limit=10)
        counters = pipeline.status().counters.model_dump()
        pipeline.shutdown()
        got = rx.wait_for(4, ok_only=True, timeout=20)
    kinds = [(r.json["type"], r.json["data"]["id"]) for r in got]
    first, second = stored[1]["id"], stored[0]["id"]  # newest first
    assert kinds[:3] == [("vadmon.event.provisional", first), ("vadmon.event.start", first),
                         ("vadmon.event.provisional", second)]  # fmt: skip
    assert ("vadmon.event.withdrawn", second) in kinds and ("vadmon.event.end", first) in kinds
    start = got[1].json["data"]
    assert start["provisional"]["snippet_index"] == 0 and start["provisional"]["gained_s"] >= 0
    assert got[0].t <= got[1].t and got[0].json["data"]["state"] == "provisional"
    withdrawn = next(r.json["data"] for r in got if r.json["type"].endswith("withdrawn"))
    assert withdrawn["state"] == "withdrawn"
    assert withdrawn["reason"] == "withdrawn: the final scores did not open an event"
    assert [e["state"] for e in stored] == ["withdrawn", "ending"]  # its clip: at shutdown
    assert counters["queued_provisional"] == 2 and counters["queued_withdrawn"] == 1
    listed = events_cli(
        subprocess_env, "--db", str(cfg.storage.outbox_db), "--json", "--since", "0"
    )
    assert listed.returncode == 0, listed.stderr
    rows = json.loads(listed.stdout)
    rows = rows.get("events", rows) if isinstance(rows, dict) else rows
    assert sorted(r["state"] for r in rows) == ["closed", "withdrawn"]  # `vadmon events`
    store = EventStore(cfg.storage.outbox_db)  # what the web review page lists
    page, _ = store.page(EventQuery())
    store.close()
    assert {(e["id"], e["state"]) for e in page} == {(first, "closed"), (second, "withdrawn")}


def test_off_by_default_and_ignored_without_the_switch(tmp_path) -> None:
    with Receiver([SECRET]) as rx:
        pipeline = AlertPipeline(alert_settings(config(tmp_path, hook("h", rx.url))))
        pipeline.start()
        _run(pipeline, [0.1] * 8, [0.95] * 8)
        pipeline.shutdown()
        assert rx.requests == [] and pipeline.early.counters == {}


def test_threshold_decides_and_defaults_to_the_alert_threshold(tmp_path) -> None:
    """A lookahead-0 score of 0.65: under ``threshold: 0.7`` nothing; with the threshold
    null, the camera's ``alerts.threshold`` (0.5) opens a provisional."""
    for i, (extra, opened) in enumerate([(EARLY, 0), (", provisional: {enabled: true}", 1)]):
        cfg = config(tmp_path / str(i), hook("h", "http://127.0.0.1:9/x"), extra)
        pipeline = AlertPipeline(alert_settings(cfg))
        pipeline.on_message(_msg(ProvisionalScore, 0, 0.65))
        assert len(pipeline.early.pending) == opened
        assert pipeline.counters["queued_provisional"] == opened
        pipeline.outbox.close()


def test_a_pending_provisional_row_survives_a_restart(tmp_path) -> None:
    """The receiver is down while the provisional is queued and the process dies (no
    shutdown); the next run sends the stored row (same webhook-id) and withdraws it."""
    down = config(tmp_path, hook("h", "http://127.0.0.1:9/x"), EARLY)
    first = AlertPipeline(alert_settings(down))
    first.start()
    first.on_message(_msg(ProvisionalScore, 0, 0.95))
    (row,) = first.outbox.deliveries()
    assert (row.kind, row.status) == ("provisional", "pending")
    first.worker.stop(0.1)  # killed: neither close_all nor an end for anything
    first.outbox.close()
    with Receiver([SECRET]) as rx:
        settings = alert_settings(config(tmp_path, hook("h", rx.url), EARLY))
        again = AlertPipeline(dataclasses.replace(settings))
        again.start()
        got = rx.wait_for(2, ok_only=True, timeout=20)
        again.shutdown()
    by_type = {r.json["type"]: r for r in got}
    assert by_type["vadmon.event.provisional"].verified == row.msg_id
    gone = by_type["vadmon.event.withdrawn"].json["data"]
    assert gone["id"] == row.event_id
    assert gone["reason"] == "withdrawn: interrupted: alert process restarted"


def _webhooks(url: str) -> str:
    return f"""webhooks:
  - name: receiver
    url: {url}
    secret: "${{HOOK_SECRET}}"
    allow_private: true"""


def _gains(starts: list) -> list[float]:
    """``gained_s`` of the starts that confirmed a provisional and went out ≥ 1 snippet later."""
    info = [r.json["data"].get("provisional") or {} for r in starts]
    return [i["gained_s"] for i in info if i.get("gained_s", 0) >= 1.6]


@pytest.mark.slow
def test_monitor_sends_a_provisional_before_its_start_and_withdraws_one(
    tmp_path, demo_checkpoint, subprocess_env
) -> None:
    """A whole ``vadmon run`` at lookahead 2 on red flashes (the demo model fires on red).
    Camera ``door``: the provisional of each flash reaches the HTTP receiver before the start
    of the same event id. Camera ``slow`` (min_duration_s 60: its final scores never open an
    event): its provisional is withdrawn when the flash is over."""
    secret = generate_secret()
    env = {**subprocess_env, "HOOK_SECRET": secret}
    flashes = "synthetic:w=320&h=240&fps=10&flash=6&flash_len=25"
    with Receiver([secret]) as rx:
        cfg = write_config(
            tmp_path / "m.yaml", {"door": flashes, "slow": flashes}, demo_checkpoint,
            ipc=short_dir() / "ipc", extra=_webhooks(rx.url), lookahead=2,
            alerts="threshold: 0.6, min_duration_s: 1.0, cutoff_s: 1.0, cooldown_s: 1, "
            "provisional: {enabled: true}",
            overrides={"cameras": {"slow": {"alerts": {"min_duration_s": 60}}}},
        )  # fmt: skip

        def by(kind: str, camera: str) -> list:
            return [r for r in rx.verified() if r.json["type"] == f"vadmon.event.{kind}"
                    and r.json["data"]["camera"] == camera]  # fmt: skip

        mon = Monitor(cfg, env).start()
        try:
            done = lambda: _gains(by("start", "door")) and by("withdrawn", "slow")  # noqa: E731
            assert wait_for(done, 240), mon.output()[-4000:]
        finally:
            mon.kill_all()
    # the first flash may be scored in the burst of snippets capture held while the model
    # loaded: a later one, scored live, gains the lookahead (2 × 1.6 s) and the confirmation
    start = next(r for r in by("start", "door") if _gains([r]))
    early = {r.json["data"]["id"]: r for r in by("provisional", "door")}
    first = early[start.json["data"]["id"]]  # the same event id
    assert first.t < start.t and first.json["data"]["state"] == "provisional"
    info = start.json["data"]["provisional"]
    assert info["gained_s"] >= 1.6 and info["score"] >= 0.6
    gone = by("withdrawn", "slow")[0].json["data"]
    assert gone["id"] in {r.json["data"]["id"] for r in by("provisional", "slow")}
    assert not by("start", "slow")
    with sqlite3.connect(load_config(cfg, env).storage.outbox_db) as db:
        states = [r[0] for r in db.execute("SELECT state FROM events")]
    summary = re.search(r"events: (\d+);", mon.output())
    assert summary, mon.output()[-2000:]
    assert "withdrawn" in states  # the stop summary counts confirmed events only
    assert int(summary.group(1)) == sum(s not in ("provisional", "withdrawn") for s in states)
    gains = [r.json["data"].get("provisional", {}).get("gained_s") for r in by("start", "door")]
    print(f"provisional ahead of start by {start.t - first.t:.2f} s at the receiver; gained_s "
          f"of each start: {gains}")  # fmt: skip
