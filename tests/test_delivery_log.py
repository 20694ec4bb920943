"""Issue 21 (logs): a webhook endpoint's failures are logged once on change, then collapsed at
power-of-two attempts; each dead letter gets its own WARNING; no secrets in any line.
A real receiver on 127.0.0.1 and a real SQLite outbox (helpers from test_delivery)."""

from __future__ import annotations

import logging

from delivery_support import SECRET, drain, enqueue, setup
from webhook_receiver import Receiver

from vadmon.runtime.log_repeat import RepeatLog


def _warnings(caplog) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.name == "vadmon.alerts.delivery" and r.levelno == logging.WARNING
    ]


def test_failures_collapse_and_dead_letter_warns(tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="vadmon.alerts.delivery")
    script = [("status", 500, {})] * 9
    with Receiver([SECRET], script=script) as rx:
        outbox, worker = setup(tmp_path, rx.url, max_attempts=9, backoff_initial_s=0.01)
        msg_id = enqueue(outbox)
        drain(worker, outbox)
        assert len(rx.requests) == 9
        lines = _warnings(caplog)
        # 8 retries → first failure + "still" at attempts 2, 4, 8; then the dead letter
        assert len(lines) == 5, lines
        assert lines[0].startswith("webhook main: delivery of event 1700000000.000000-abcdef")
        assert "HTTP 500" in lines[0]
        assert [ln.split(", ")[1] for ln in lines[1:4]] == [
            "2 attempts", "4 attempts", "8 attempts"
        ]  # fmt: skip
        assert all("still HTTP 500" in ln for ln in lines[1:4])
        assert "dead letter after 9 attempts" in lines[4] and msg_id in lines[4]
        assert all(SECRET not in ln and SECRET[6:] not in ln for ln in lines)

        # the endpoint works again: one INFO line, and the next failure warns afresh
        caplog.clear()
        enqueue(outbox, 1)
        drain(worker, outbox)
        infos = [r.getMessage() for r in caplog.records if r.levelno == logging.INFO]
        assert "webhook main: delivering again" in infos


def test_repeat_log_counts_lines_for_n_identical_failures(caplog):
    logger = logging.getLogger("vadmon.test.repeat")
    caplog.set_level(logging.INFO, logger=logger.name)
    rl = RepeatLog(logger)
    logged = [rl.failed("cam1", "refused", "cam1: connection refused", 2.0) for _ in range(100)]
    assert sum(logged) == 7  # attempts 1, 2, 4, 8, 16, 32, 64
    assert caplog.records[-1].getMessage() == "cam1: still refused, 64 attempts, next in 2 s"
    assert rl.failed("cam1", "timeout", "cam1: timed out")  # a new kind logs at once
    assert rl.recovered("cam1", "cam1: back") and not rl.recovered("cam1", "cam1: back")
    assert rl.failed("cam1", "timeout", "cam1: timed out")  # after recovery: first again
