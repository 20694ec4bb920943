"""``--log-format json`` in service mode: every line a child writes becomes one JSON object.

Why: the children's Python logging already writes JSON, but C libraries write to fd 2 on their
own (OpenCV/FFmpeg: "[h264 @ 0x…] error while decoding"), and so do tracebacks and the one-line
bad-input errors; 12 of 57 lines of a real run were not JSON. The supervisor reads each child's
stdout+stderr from a pipe and passes JSON object lines through unchanged; any other line is
wrapped as ``{"ts", "level", "process", "logger": "stderr", "msg"}``.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from typing import IO

MAX_LINE = 8192


def wrap_line(process: str, line: str) -> str:
    """The line itself when it is already a JSON object, else a JSON object holding it."""
    line = line.rstrip("\r\n")[:MAX_LINE]
    if line.startswith("{"):
        try:
            if isinstance(json.loads(line), dict):
                return line
        except ValueError:
            pass
    lowered = line.lower()
    level = "error" if "error" in lowered or "traceback" in lowered else "warning"
    record = {"ts": round(time.time(), 3), "level": level, "process": process}
    return json.dumps({**record, "logger": "stderr", "msg": line})


def pump_json(process: str, stream: IO[bytes], out: IO[str] | None = None) -> threading.Thread:
    """Copy ``stream`` to ``out`` (our stderr) line by line, wrapped, until EOF."""
    target = out or sys.stderr
    lock = _LOCK

    def run() -> None:
        with stream:
            for raw in iter(stream.readline, b""):
                text = wrap_line(process, raw.decode("utf-8", errors="replace"))
                with lock:
                    target.write(text + "\n")
                    target.flush()

    thread = threading.Thread(target=run, name=f"json-{process}", daemon=True)
    thread.start()
    return thread


_LOCK = threading.Lock()  # one line at a time from every child
