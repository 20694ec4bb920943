"""Score logs: every scored snippet of every camera, kept for replay and calibration.

One JSON-lines file per camera per UTC hour (``scores/<camera>/<YYYYmmddTHH>.jsonl``). A line is
either a header ``{"classes": [...]}`` (written at the top of a file and whenever the class list
changes) or a snippet record with short keys. Scores and probabilities are written as the shortest
text that identifies the same float32, the precision the model produced them in, and read back
through float32, so a replay sees exactly the numbers the live alert logic saw at about half the
size of full doubles.

Writing fails soft: a full or read-only disk is counted (``score_log_errors``) and scoring goes
on. Files older than ``keep_hours`` are deleted at each hourly rotation, and only files whose
names this module writes are ever touched.
"""

from __future__ import annotations

import calendar
import contextlib
import json
import re
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import numpy as np

from vadmon.runtime.messages import MessageError, ScoreMessage

NAME = re.compile(r"^(\d{8}T\d{2})\.jsonl$")
HOUR = "%Y%m%dT%H"


def _f32(x: float) -> float:
    """Shortest decimal that identifies ``x`` as a float32 (read back with ``_r32``)."""
    return float(np.format_float_positional(np.float32(x), unique=True, trim="-"))


def _r32(x: Any) -> float:
    """The float32 value a ``_f32`` decimal stands for, as the live process saw it."""
    return float(np.float32(float(x)))


def _record(msg: ScoreMessage) -> dict[str, Any]:
    rec: dict[str, Any] = {
        "i": msg.snippet_index,
        "t0": msg.t_start,
        "t1": msg.t_end,
        "te": msg.t_emitted,
        "s": _f32(msg.score),
        "f": _f32(msg.fine),
        "p": [_f32(p) for p in msg.class_probs],
        "m": msg.mode,
    }
    if msg.phrases:
        rec["ph"] = msg.phrases
        rec["pp"] = [_f32(p) for p in msg.phrase_probs]
    return rec


@dataclass
class _Open:
    hour: str
    handle: IO[str]
    classes: list[str]


class ScoreLogWriter:
    """Appends ScoreMessages to hourly per-camera files; never raises on I/O errors."""

    def __init__(self, root: Path, keep_hours: float) -> None:
        self.root = Path(root)
        self.keep_s = keep_hours * 3600.0
        self.files: dict[str, _Open] = {}
        self.counters = {"score_log_lines": 0, "score_log_errors": 0, "score_log_pruned": 0}

    def write(self, msg: ScoreMessage) -> None:
        try:
            self._write(msg)
            self.counters["score_log_lines"] += 1
        except OSError:
            self.counters["score_log_errors"] += 1
            self._drop(msg.camera)

    def _write(self, msg: ScoreMessage) -> None:
        hour = time.strftime(HOUR, time.gmtime(msg.t_end))
        cur = self.files.get(msg.camera)
        if cur is None or cur.hour != hour:
            self._drop(msg.camera)
            directory = self.root / msg.camera
            directory.mkdir(parents=True, exist_ok=True, mode=0o700)
            handle = open(directory / f"{hour}.jsonl", "a", encoding="utf-8")  # noqa: SIM115
            cur = self.files[msg.camera] = _Open(hour, handle, [])
            self.prune(time.time())
        if cur.classes != msg.class_names:
            cur.handle.write(json.dumps({"classes": msg.class_names}) + "\n")
            cur.classes = list(msg.class_names)
        cur.handle.write(json.dumps(_record(msg), separators=(",", ":")) + "\n")
        cur.handle.flush()

    def _drop(self, camera: str) -> None:
        cur = self.files.pop(camera, None)
        if cur is not None:
            with contextlib.suppress(OSError):
                cur.handle.close()

    def prune(self, now: float) -> None:
        """Delete hourly files that ended more than ``keep_hours`` ago (our names only)."""
        if not self.root.is_dir():
            return
        for cam_dir in self.root.iterdir():
            for f in cam_dir.glob("*.jsonl") if cam_dir.is_dir() else ():
                m = NAME.match(f.name)
                if m is None:
                    continue
                start = calendar.timegm(time.strptime(m.group(1), HOUR))
                if now - (start + 3600) > self.keep_s:
                    f.unlink(missing_ok=True)
                    self.counters["score_log_pruned"] += 1

    def close(self) -> None:
        for camera in list(self.files):
            self._drop(camera)


def log_files(paths: Iterable[Path]) -> list[Path]:
    """Expand directories (a score-log root, or one camera's folder) into hourly files."""
    out: list[Path] = []
    for p in paths:
        p = Path(p)
        if p.is_dir():
            out += sorted(f for f in p.rglob("*.jsonl") if NAME.match(f.name))
        elif p.is_file():
            out.append(p)
    return out


def read_log(path: Path, camera: str | None = None) -> Iterator[ScoreMessage]:
    """ScoreMessages of one file; the camera is the folder name. Torn lines are skipped."""
    camera = camera or path.parent.name
    classes: list[str] = []
    with open(path, encoding="utf-8", errors="replace") as fh:
        for line in fh:
            try:
                rec = json.loads(line)
            except json.JSONDecodeError:
                continue  # a line cut by a crash or a full disk
            if not isinstance(rec, dict):
                continue
            if "classes" in rec:
                classes = [str(c) for c in rec["classes"]]
                continue
            try:
                msg = ScoreMessage(
                    camera=camera,
                    snippet_index=int(rec["i"]),
                    t_start=float(rec["t0"]),
                    t_end=float(rec["t1"]),
                    score=_r32(rec["s"]),
                    fine=_r32(rec["f"]),
                    class_names=classes,
                    class_probs=[_r32(p) for p in rec["p"]],
                    mode=str(rec.get("m", "vadclip")),
                    t_emitted=float(rec.get("te", rec["t1"])),
                    phrases=[str(p) for p in rec.get("ph", [])],
                    phrase_probs=[_r32(p) for p in rec.get("pp", [])],
                )
                msg.validate()
            except (KeyError, TypeError, ValueError, MessageError):
                continue
            yield msg


def read_logs(paths: Iterable[Path], camera: str | None = None) -> list[ScoreMessage]:
    """Every message under ``paths`` (optionally one camera), in the order inference sent them."""
    msgs = [m for f in log_files(paths) for m in read_log(f)]
    if camera is not None:
        msgs = [m for m in msgs if m.camera == camera]
    return sorted(msgs, key=lambda m: (m.t_emitted, m.camera, m.snippet_index))
