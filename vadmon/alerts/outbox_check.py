"""The outbox's integrity, checked before anything writes to it.

A page-corrupted outbox used to make the alert process die on its first query, be restarted,
die again, while the monitor ran on without alerts and SQLite's recovery wrote to the damaged
file. Now the file is checked read-only (``PRAGMA quick_check``) at open: a corrupt one is one
line naming the file and the two ways on (restore it, or move it aside), and is never written.
Moving it aside (with its ``-wal``/``-shm``) and starting a new, empty outbox happens only when
the operator asks: ``vadmon run --move-corrupt-outbox``.
"""

from __future__ import annotations

import logging
import sqlite3
import time
from pathlib import Path

from vadmon.errors import VadmonError

log = logging.getLogger("vadmon.alerts")

MOVE_FLAG = "--move-corrupt-outbox"
SIDE_FILES = ("", "-wal", "-shm")


def integrity_problem(path: Path) -> str | None:
    """What ``quick_check`` (or opening) says is wrong with ``path``; None when sound or new.

    Opened ``mode=ro``: reading never modifies the database file, damaged or not."""
    if not path.is_file() or path.stat().st_size == 0:
        return None  # no outbox yet: the writer creates it
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5.0)
    except sqlite3.OperationalError:
        return None  # cannot open at all (permissions): the writer's open says so
    try:
        rows = conn.execute("PRAGMA quick_check").fetchmany(3)
    except sqlite3.OperationalError:
        return None  # busy or unreadable, not a verdict on the content
    except sqlite3.DatabaseError as exc:  # "file is not a database", "disk image is malformed"
        return str(exc)
    finally:
        conn.close()
    if rows == [("ok",)]:
        return None
    return "; ".join(str(row[0]) for row in rows)


def check_outbox(path: Path, move_aside: bool = False) -> Path | None:
    """Refuse a corrupt outbox in one line; with ``move_aside`` rename it (returns the new
    name) so a fresh one is started. A sound or missing outbox: None, nothing touched."""
    problem = integrity_problem(path)
    if problem is None:
        return None
    if not move_aside:
        raise VadmonError(
            f"the outbox database is corrupt ({problem}); it was left unmodified",
            str(path),
            f"restore it from a backup, or start with `vadmon run {MOVE_FLAG}` to move it "
            "aside (kept beside it as .corrupt-<time>) and begin a new, empty outbox",
        )
    stamp = time.strftime("%Y%m%dT%H%M%S")
    target = path.with_name(f"{path.name}.corrupt-{stamp}")
    for suffix in SIDE_FILES:
        side = path.with_name(path.name + suffix)
        if side.exists():
            side.rename(target.with_name(target.name + suffix))
    log.warning("outbox %s was corrupt (%s): moved aside to %s", path, problem, target)
    return target
