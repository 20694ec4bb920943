"""Where the monitor's log lines go: stderr (plain or JSON) or, under the live view, files.

Every vadmon process logs to its stderr through ``setup_logging``; the format comes from
``VADMON_LOG_FORMAT`` (``plain`` or ``json``, set by ``vadmon run --log-format``) so one choice
covers the supervisor and all its children — journald and Loki then get one record per line.
Lines can carry structured ``fields`` (``log.info(..., extra=fields(camera=...))``): the JSON
format emits them as keys, the plain format appends them as ``key=value``.

While the dashboard owns the terminal a child must not write there (every line leaves half a
frame behind), so the supervisor reads each child's stdout+stderr from a pipe and writes it to
``<run dir>/logs/<process>.log``, rotated by size (``ChildLog``). C libraries writing to fd 2
(FFmpeg) land there too, which a Python logging handler in the child could not catch.
"""

from __future__ import annotations

import json
import logging
import logging.handlers
import os
import re
import sys
import threading
import time
from collections import deque
from pathlib import Path
from typing import IO, Any

ENV_FORMAT = "VADMON_LOG_FORMAT"
FORMATS = ("plain", "json")
ROTATE_BYTES = 5 * 1024 * 1024
ROTATE_KEEP = 3
TAIL_LINES = 20


def fields(**values: Any) -> dict[str, Any]:
    """``extra=`` for a log call whose values should stay machine-readable."""
    return {"fields": values}


class PlainFormatter(logging.Formatter):
    def __init__(self, process: str) -> None:
        super().__init__(f"%(asctime)s {process} %(levelname)s %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        extra = getattr(record, "fields", None)
        if isinstance(extra, dict) and extra:
            line += " " + " ".join(f"{k}={_plain(v)}" for k, v in extra.items())
        return line


def _plain(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.3f}".rstrip("0").rstrip(".")
    text = str(value)
    return json.dumps(text) if not text or re.search(r"\s|=|\"", text) else text


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ts, level, process, logger, msg, then the record's fields."""

    def __init__(self, process: str) -> None:
        super().__init__()
        self.process = process

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": round(record.created, 3),
            "level": record.levelname.lower(),
            "process": self.process,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        extra = getattr(record, "fields", None)
        if isinstance(extra, dict):
            out.update({k: v for k, v in extra.items() if k not in out})
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return json.dumps(out, default=str)


def log_format() -> str:
    value = os.environ.get(ENV_FORMAT, "plain")
    return value if value in FORMATS else "plain"


def setup_logging(process: str, level: str | int | None = None, file: Path | None = None) -> None:
    """Route the root logger to stderr, or to a rotating ``file``, in the format the environment
    asks for. ``level`` None keeps the root logger's level (or INFO when none was set)."""
    handler: logging.Handler
    if file is not None:
        file.parent.mkdir(parents=True, exist_ok=True)
        handler = logging.handlers.RotatingFileHandler(
            file, maxBytes=ROTATE_BYTES, backupCount=ROTATE_KEEP, encoding="utf-8"
        )
    else:
        handler = logging.StreamHandler(sys.stderr)
    formatter = JsonFormatter(process) if log_format() == "json" else PlainFormatter(process)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    # one INFO line per webhook POST ("HTTP Request: POST …") buried the lines that matter;
    # delivery outcomes are logged by vadmon itself
    for chatty in ("httpx", "httpcore"):
        logging.getLogger(chatty).setLevel(logging.WARNING)
    if level is not None:
        root.setLevel(level.upper() if isinstance(level, str) else level)
    elif root.level == logging.WARNING:  # the default: nobody chose
        root.setLevel(logging.INFO)


def log_file_name(process: str) -> str:
    """``capture:door`` → ``capture-door.log`` (names are config keys, but stay safe anyway)."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", process).strip(".-")[:80] + ".log"


class ChildLog:
    """One child's output file, rotated by size; keeps the last lines for error messages."""

    def __init__(self, directory: Path, process: str) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.path = directory / log_file_name(process)
        self._handler = logging.handlers.RotatingFileHandler(
            self.path, maxBytes=ROTATE_BYTES, backupCount=ROTATE_KEEP, encoding="utf-8"
        )
        self._handler.setFormatter(logging.Formatter("%(message)s"))
        self.tail: deque[str] = deque(maxlen=TAIL_LINES)
        self._lock = threading.Lock()

    def write(self, line: str) -> None:
        line = line.rstrip("\r\n")
        record = logging.LogRecord("child", logging.INFO, "", 0, line, None, None)
        with self._lock:
            self.tail.append(line)
            self._handler.handle(record)

    def pump(self, stream: IO[bytes]) -> threading.Thread:
        """Copy ``stream`` line by line until EOF (the child and its helpers exited)."""

        def run() -> None:
            with stream:
                for raw in iter(stream.readline, b""):
                    self.write(raw.decode("utf-8", errors="replace"))

        thread = threading.Thread(target=run, name=f"log-{self.path.stem}", daemon=True)
        thread.start()
        return thread

    def error_line(self) -> str:
        """The child's last line that reads like an error (its one-line bad-input message)."""
        for line in reversed(self.tail):
            if "error" in line.lower():
                return line
        return self.tail[-1] if self.tail else ""

    def close(self) -> None:
        with self._lock:
            self._handler.close()


class ChildLogs:
    """The supervisor's side: one ``ChildLog`` per child name (kept across restarts) and the
    threads that pump each incarnation's pipe into it."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.files: dict[str, ChildLog] = {}
        self._pumps: list[threading.Thread] = []

    def attach(self, name: str, stream: IO[bytes]) -> None:
        if name not in self.files:
            self.files[name] = ChildLog(self.directory, name)
        self._pumps = [t for t in self._pumps if t.is_alive()]
        self._pumps.append(self.files[name].pump(stream))

    def error_line(self, name: str) -> str:
        return self.files[name].error_line() if name in self.files else ""

    def close(self, timeout_s: float = 2.0) -> None:
        """Let the pumps copy what the exited children left in their pipes, then close."""
        deadline = time.monotonic() + timeout_s
        for thread in self._pumps:
            thread.join(max(0.0, deadline - time.monotonic()))
        for child_log in self.files.values():
            child_log.close()
