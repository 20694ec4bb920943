"""Entry of the alerts process: ``python -m vadmon.alerts --config X``.

The only alerts code that knows the config: it loads it, asks the composition root
(``vadmon.monitor``) for the settings and endpoints, and runs ``vadmon.alerts.process``.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from vadmon.alerts.clip_writer import ClipSettings
from vadmon.alerts.delivery import DeliverySettings, Endpoint
from vadmon.alerts.event import EventSettings
from vadmon.alerts.process import AlertSettings, run_alerts
from vadmon.config import load_config
from vadmon.errors import VadmonError
from vadmon.monitor import alert_settings, camera_endpoints, score_endpoint


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m vadmon.alerts", description="vadmon alerts process")
    p.add_argument("--config", type=Path, help="monitor config (replaces the options below)")
    p.add_argument("--db", type=Path, help="SQLite outbox/event log")
    p.add_argument("--media-dir", type=Path, help="snapshots and clips go here")
    p.add_argument("--scores", help="ZeroMQ endpoint publishing ScoreMessages")
    p.add_argument("--previews", help="ZeroMQ endpoint publishing PreviewFrames")
    p.add_argument("--status", default=None, help="ZeroMQ endpoint to send heartbeats to")
    p.add_argument("--webhook", action="append", default=[], help="receiver URL (repeatable)")
    p.add_argument("--secret-env", default="VADMON_WEBHOOK_SECRET", help="env var with whsec_…")
    p.add_argument("--allow-private", action="store_true", help="allow loopback/private URLs")
    p.add_argument("--threshold", type=float, default=0.5)
    p.add_argument("--hysteresis", type=float, default=0.1)
    p.add_argument("--min-duration", type=float, default=1.0)
    p.add_argument("--cutoff", type=float, default=2.0)
    p.add_argument("--cooldown", type=float, default=30.0)
    p.add_argument("--smoothing", choices=["ema", "median", "none"], default="ema")
    p.add_argument("--smoothing-k", type=int, default=3)
    p.add_argument("--update-interval", type=float, default=5.0)
    p.add_argument("--pre", type=float, default=5.0)
    p.add_argument("--post", type=float, default=5.0)
    p.add_argument("--max-attempts", type=int, default=8)
    p.add_argument("--backoff-base", type=float, default=2.0)
    p.add_argument("--deadline", type=float, default=10.0, help="per-attempt wall-clock limit")
    p.add_argument("--flush", type=float, default=3.0, help="seconds to keep sending on exit")
    return p


def settings_from_args(args: argparse.Namespace) -> AlertSettings:
    secret = os.environ.get(args.secret_env, "")
    if args.webhook and not secret:
        raise VadmonError(
            f"environment variable {args.secret_env} is not set", "--secret-env", "export whsec_…"
        )
    endpoints = tuple(
        Endpoint(f"webhook{i}" if i else "default", url, (secret,), args.allow_private)
        for i, url in enumerate(args.webhook)
    )
    try:
        events = EventSettings(
            threshold=args.threshold,
            hysteresis=args.hysteresis,
            min_duration_s=args.min_duration,
            cutoff_s=args.cutoff,
            cooldown_s=args.cooldown,
            smoothing=args.smoothing,
            smoothing_k=args.smoothing_k,
            update_interval_s=args.update_interval,
        )
    except ValueError as exc:
        raise VadmonError(str(exc), "event settings") from None
    return AlertSettings(
        db_path=args.db,
        clips=ClipSettings(args.media_dir, pre_s=args.pre, post_s=args.post),
        events=events,
        delivery=DeliverySettings(
            endpoints=endpoints,
            max_attempts=args.max_attempts,
            backoff_base_s=args.backoff_base,
            attempt_deadline_s=args.deadline,
        ),
        flush_s=args.flush,
    )


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        if args.config:
            cfg = load_config(args.config)
            previews = [camera_endpoints(cfg, c).publish for c in cfg.enabled_cameras()]
            return run_alerts(alert_settings(cfg), score_endpoint(cfg), previews)
        if not (args.db and args.media_dir and args.scores and args.previews):
            parser.error("give --config, or all of --db --media-dir --scores --previews")
        settings = settings_from_args(args)
        return run_alerts(settings, args.scores, args.previews, args.status)
    except VadmonError as exc:
        print(f"vadmon alerts: error: {exc.line()}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
