"""``vadmon events``: list events, dead letters, and replay a dead letter with the same id."""

from __future__ import annotations

import argparse
import json
import os
import re
import sqlite3
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from vadmon.alerts.outbox import Outbox
from vadmon.errors import VadmonError

_RELATIVE = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_since(text: str, now: float | None = None) -> float:
    """``30m``/``2h``/``1d`` ago, a unix timestamp, or an ISO date/time (local time)."""
    now = time.time() if now is None else now
    m = re.fullmatch(r"(\d+(?:\.\d+)?)([smhd])", text.strip())
    if m:
        return now - float(m.group(1)) * _RELATIVE[m.group(2)]
    try:
        return float(text)
    except ValueError:
        pass
    try:
        return datetime.fromisoformat(text).timestamp()
    except ValueError:
        raise VadmonError(
            f"cannot parse --since {text!r}", "--since", "use e.g. 30m, 2h, 1d, or 2024-05-01T12:00"
        ) from None


def _clock(ts: float | None) -> str:
    return "-" if ts is None else datetime.fromtimestamp(ts).strftime("%Y-%m-%d %H:%M:%S")


def _print(rows: list[dict[str, Any]], as_json: bool, columns: list[str]) -> None:
    if as_json:
        print(json.dumps(rows, indent=1, default=str))
        return
    if not rows:
        print("(none)")
        return
    print("  ".join(columns))
    for row in rows:
        print("  ".join(str(row.get(c, "")) for c in columns))


def outbox_path(args: argparse.Namespace) -> Path:
    """The outbox a monitor writes: ``--db``, else ``$VADMON_DB``, else the config's storage."""
    if getattr(args, "db", None):
        return Path(args.db)
    if os.environ.get("VADMON_DB"):
        return Path(os.environ["VADMON_DB"])
    from vadmon.config import load_config
    from vadmon.config.models import StorageConfig

    config = getattr(args, "config", None)
    if config is None:
        return StorageConfig().outbox_db  # where a config without storage.dir puts it
    return load_config(config).storage.outbox_db


def open_outbox(args: argparse.Namespace, readonly: bool = True) -> Outbox:
    """The outbox, or one error line: missing file, or a file that is not an outbox."""
    path = outbox_path(args)
    fix = "pass the monitor's --config FILE (or --db PATH)"
    if not path.is_file():
        raise VadmonError("no outbox database (the monitor has not run here yet?)", str(path), fix)
    try:
        outbox = Outbox(path, readonly=readonly)
        outbox.counts()
    except sqlite3.DatabaseError as exc:
        raise VadmonError(f"not a vadmon outbox ({exc})", str(path), fix) from None
    return outbox


def list_events(args: argparse.Namespace) -> int:
    outbox = open_outbox(args)
    since = parse_since(args.since) if args.since else None
    rows = outbox.list_events(args.camera, since, args.limit)
    reviews = outbox.feedback([r["id"] for r in rows])
    if args.json:
        out = [{**r, "data": json.loads(r["data"]), "feedback": reviews.get(r["id"])} for r in rows]
        _print(out, True, [])
        return 0
    table = [
        {
            "id": r["id"],
            "camera": r["camera"],
            "label": r["label"],
            "prob": f"{r['label_prob'] or 0:.2f}",
            "start": _clock(r["start_ts"]),
            "end": _clock(r["end_ts"]),
            "peak": f"{r['peak_score'] or 0:.2f}",
            "state": r["state"],
            "review": reviews.get(r["id"], {}).get("verdict", "-"),
        }
        for r in rows
    ]
    cols = ["id", "camera", "label", "prob", "start", "end", "peak", "state", "review"]
    _print(table, False, cols)
    for r in rows:
        why = json.loads(r["data"]).get("explanation") or {}
        for key in ("text", "narrative"):
            if why.get(key):
                print(f"{r['id']} {key}: {why[key]}")
        note = reviews.get(r["id"], {}).get("note")
        if note:
            print(f"{r['id']} review note: {note}")
    return 0


def list_dead(args: argparse.Namespace) -> int:
    rows = open_outbox(args).dead_letters()
    for r in rows:
        r["updated"] = _clock(r["updated_at"])
    cols = ["msg_id", "endpoint", "event_id", "kind", "attempts", "updated", "last_error"]
    _print(rows, args.json, cols)
    return 0


def replay(args: argparse.Namespace) -> int:
    n = open_outbox(args, readonly=False).replay(args.msg_id)
    if n == 0:
        raise VadmonError(
            f"no dead letter with id {args.msg_id!r}", "vadmon events dead", "list ids first"
        )
    print(f"re-queued {args.msg_id} for {n} endpoint(s); the alert process sends it")
    return 0


def _common(p: argparse.ArgumentParser, nested: bool = False) -> None:
    # nested parsers must not reset a value given before the sub-command (argparse quirk)
    none = argparse.SUPPRESS if nested else None
    json_default = argparse.SUPPRESS if nested else False
    p.add_argument(
        "--config",
        type=Path,
        default=none,
        help="the monitor's config: the outbox is in its storage.dir "
        "(default: the schema's storage dir, runs/)",
    )
    p.add_argument(
        "--db", type=Path, default=none, help="outbox SQLite file itself (or $VADMON_DB)"
    )
    p.add_argument("--json", action="store_true", default=json_default, help="JSON output")


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("events", help="list alert events, dead letters, replay")
    _common(p)
    p.add_argument("--camera", help="only this camera")
    p.add_argument("--since", help="30m, 2h, 1d, unix time or ISO date/time")
    p.add_argument("--limit", type=int, default=100)
    p.set_defaults(handler=list_events)
    sub = p.add_subparsers(dest="events_command")
    dead = sub.add_parser("dead", help="webhook messages that exhausted their retries")
    _common(dead, nested=True)
    dead.set_defaults(handler=list_dead)
    rp = sub.add_parser("replay", help="re-send a dead letter with the same webhook-id")
    _common(rp, nested=True)
    rp.add_argument("msg_id", help="webhook-id as listed by 'vadmon events dead'")
    rp.set_defaults(handler=replay)


def main(argv: list[str] | None = None) -> int:
    """Standalone entry (``python -m vadmon.commands.events``), same parser as ``vadmon events``."""
    parser = argparse.ArgumentParser(prog="vadmon")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["events", *(sys.argv[1:] if argv is None else argv)])
    try:
        return int(args.handler(args) or 0)
    except VadmonError as exc:
        print(f"vadmon events: error: {exc.line()}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
