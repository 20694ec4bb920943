"""Log lines an operator can use: JSON mode wraps what children write outside logging (FFmpeg
on fd 2), httpx's per-POST lines stay below INFO, event lines carry the duration."""

from __future__ import annotations

import json
import logging
import sys
import time

from vadmon.alerts.process import log_event
from vadmon.runtime.child import ChildSpec
from vadmon.runtime.log_wrap import wrap_line
from vadmon.runtime.logs import ENV_FORMAT, setup_logging
from vadmon.runtime.supervisor import Supervisor

NOISY = (
    "import os, json; os.write(2, b'[h264 @ 0x55d0] error while decoding MB 3 4\\n'); "
    "print(json.dumps({'ts': 1.0, 'level': 'info', 'process': 'c', 'msg': 'ok'}), flush=True); "
    "os.write(1, b'plain stdout line\\n')"
)


def test_json_mode_wraps_every_line_a_child_writes(monkeypatch, capfd):
    monkeypatch.setenv(ENV_FORMAT, "json")
    sup = Supervisor([ChildSpec("noisy", [sys.executable, "-c", NOISY], restart=False)])
    sup.start()
    deadline = time.monotonic() + 30
    while sup.children["noisy"].proc is not None and time.monotonic() < deadline:
        sup.poll(0.05)
    sup.shutdown()
    lines = [x for x in capfd.readouterr().err.splitlines() if x.strip()]
    records = [json.loads(x) for x in lines if '"process": "noisy"' in x or '"c"' in x]
    msgs = {r["msg"]: r for r in records}
    assert msgs["[h264 @ 0x55d0] error while decoding MB 3 4"]["level"] == "error"
    assert msgs["plain stdout line"]["logger"] == "stderr"
    assert "ok" in msgs  # a JSON line passes through unchanged
    for line in lines:
        if "noisy" in line or '"c"' in line:
            assert isinstance(json.loads(line), dict)


def test_wrap_line_keeps_json_objects_and_wraps_the_rest():
    assert wrap_line("p", '{"msg": "x"}\n') == '{"msg": "x"}'
    wrapped = json.loads(wrap_line("capture:door", "[rtsp @ 0x1] method DESCRIBE failed"))
    assert wrapped["process"] == "capture:door" and wrapped["level"] == "warning"
    assert json.loads(wrap_line("p", "[1, 2]"))["msg"] == "[1, 2]"  # not an object: wrapped


def test_httpx_posts_stay_below_info():
    setup_logging("alerts", "INFO")
    assert not logging.getLogger("httpx").isEnabledFor(logging.INFO)
    assert logging.getLogger("httpx").isEnabledFor(logging.WARNING)


def test_event_lines_carry_the_duration(caplog):
    ev = {"id": "e1", "kind": "end", "camera": "door", "label": "fighting", "prob": 0.8,
          "duration": 12.345}  # fmt: skip
    with caplog.at_level(logging.INFO, logger="vadmon.alerts"):
        log_event(ev, None, "")
    record = caplog.records[-1]
    assert record.getMessage() == "event end" and record.fields["duration_s"] == 12.3
