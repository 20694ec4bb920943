"""``vadmon replay LOGS --config X``: the events stored scores would fire under X's settings."""

from __future__ import annotations

import argparse
import json
from datetime import datetime
from pathlib import Path

from vadmon.errors import VadmonError


def _clock(ts: float | None) -> str:
    return "-" if ts is None else datetime.fromtimestamp(ts).strftime("%Y-%m-%d %H:%M:%S")


def run(args: argparse.Namespace) -> int:
    from vadmon.alerts.replay import replay
    from vadmon.alerts.scorelog import read_logs
    from vadmon.config import load_config
    from vadmon.settings import alert_settings, score_log_dir

    cfg = load_config(args.config)
    paths = args.logs or [score_log_dir(cfg)]
    scores = read_logs(paths, args.camera)
    if not scores:
        where = ", ".join(str(p) for p in paths)
        raise VadmonError("no scored snippets found", where, "pass score-log files or folders")
    settings = alert_settings(cfg)
    result = replay(scores, settings.events, settings.per_camera)
    ends = {m.event.id: m.event for m in result.ends()}
    rows = []
    for m in result.starts():
        ev = ends.get(m.event.id, m.event)
        rows.append(ev.to_dict())
    if args.json:
        print(json.dumps(rows, indent=1))
        return 0
    print(f"{len(scores)} snippets, {len(rows)} event(s) under {args.config}:")
    for ev in rows:
        print(
            f"{ev['id']}  {ev['camera']}  {ev['label']} ({ev['label_prob']:.2f})  "
            f"{_clock(ev['start_ts'])}  {ev['duration_s']:.1f} s  peak {ev['peak_score']:.2f}"
        )
        text = (ev.get("explanation") or {}).get("text")
        if text:
            print(f"    {text}")
    suppressed = result.counters.get("suppressed_cooldown", 0)
    if suppressed:
        print(f"({suppressed} more suppressed by cooldown)")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "replay",
        help="re-run the alert logic over stored score logs with a config's settings",
        description="Prints the events that would have fired; the model is not run.",
    )
    p.add_argument(
        "logs",
        nargs="*",
        type=Path,
        help="score-log files/folders (default: the config's storage.dir/scores)",
    )
    p.add_argument("--config", type=Path, required=True, help="alert settings to apply")
    p.add_argument("--camera", help="only this camera")
    p.add_argument("--json", action="store_true", help="events as JSON")
    p.set_defaults(handler=run)
