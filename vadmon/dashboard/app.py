"""Standalone dashboard viewer and a synthetic heartbeat feed (``python -m vadmon.dashboard``).

``--listen ENDPOINT`` binds a ZeroMQ PULL socket, exactly like the supervisor's heartbeat
socket, and shows what arrives; with ``--outbox`` it also reads webhook counts and recent events
from the (read-only) SQLite outbox. ``--demo-feed ENDPOINT`` sends made-up heartbeats for every
process kind, to try the view without cameras or a model; its numbers mean nothing.
"""

from __future__ import annotations

import argparse
import math
import random
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any

import zmq

from vadmon.alerts.outbox import Outbox
from vadmon.config import DashboardConfig, MetricsConfig
from vadmon.dashboard.console import DEMO_BANNER, Dashboard
from vadmon.dashboard.prometheus import start_exporter
from vadmon.errors import VadmonError
from vadmon.runtime.heartbeat import MAX_BYTES, HeartbeatSender, parse_heartbeat
from vadmon.runtime.status_schema import (
    ALERT_LATENCY_BUCKETS,
    ALERTS_PROCESS,
    CAPTURE_PREFIX,
    INFERENCE_LATENCY_BUCKETS,
    INFERENCE_PROCESS,
    MAX_RECENT_SCORES,
    Histogram,
)
from vadmon.runtime.zmq_context import process_context

OUTBOX_POLL_S = 1.0


def outbox_snapshot(outbox: Outbox, limit: int = 10) -> tuple[dict[str, int], list[dict]]:
    """Queue counts in the dashboard's terms and the newest events, from the outbox itself."""
    return outbox.queue_counts(), outbox.list_events(limit=limit)


def listen(
    endpoint: str,
    dashboard: Dashboard,
    stop: threading.Event,
    duration_s: float | None = None,
    outbox_path: Path | None = None,
) -> int:
    """Receive heartbeats until ``stop`` (or ``duration_s``); returns the count received."""
    pull = process_context().socket(zmq.PULL)
    pull.setsockopt(zmq.LINGER, 0)
    pull.setsockopt(zmq.MAXMSGSIZE, MAX_BYTES)
    pull.setsockopt(zmq.RCVHWM, 1000)
    try:
        pull.bind(endpoint)
    except zmq.ZMQError as exc:
        pull.close(0)
        raise VadmonError(
            f"cannot bind {endpoint}: {exc}",
            "--listen",
            "give a free tcp://127.0.0.1:PORT or ipc:///path",
        ) from exc
    outbox = Outbox(outbox_path, readonly=True) if outbox_path else None
    received, next_outbox = 0, 0.0
    deadline = None if not duration_s else time.monotonic() + duration_s
    dashboard.start()
    try:
        while not stop.is_set() and (deadline is None or time.monotonic() < deadline):
            if pull.poll(100):
                received += _drain(pull, dashboard)
            if outbox is not None and time.monotonic() >= next_outbox:
                dashboard.state.update_outbox(*outbox_snapshot(outbox))
                next_outbox = time.monotonic() + OUTBOX_POLL_S
    finally:
        dashboard.stop()
        pull.close(0)
        if outbox is not None:
            outbox.close()
    return received


def _drain(pull: zmq.Socket, dashboard: Dashboard, limit: int = 1000) -> int:
    n = 0
    for _ in range(limit):
        try:
            frames = pull.recv_multipart(zmq.NOBLOCK)
        except zmq.Again:
            break
        hb = parse_heartbeat(frames)
        if hb is not None:
            dashboard.state.update_heartbeat(hb)
            n += 1
    return n


# --- synthetic feed ---------------------------------------------------------------------------


def demo_feed(
    endpoint: str, cameras: list[str], stop: threading.Event, duration_s: float | None = None
) -> int:
    """Send made-up heartbeats twice a second per process; returns the number of rounds."""
    senders = {
        f"{CAPTURE_PREFIX}{c}": HeartbeatSender(endpoint, f"{CAPTURE_PREFIX}{c}") for c in cameras
    }
    senders[INFERENCE_PROCESS] = HeartbeatSender(endpoint, INFERENCE_PROCESS)
    senders[ALERTS_PROCESS] = HeartbeatSender(endpoint, ALERTS_PROCESS)
    feed = _DemoFeed(cameras)
    rounds = 0
    deadline = None if not duration_s else time.monotonic() + duration_s
    try:
        while not stop.is_set() and (deadline is None or time.monotonic() < deadline):
            now = time.time()
            for cam in cameras:
                senders[f"{CAPTURE_PREFIX}{cam}"].beat(**_demo_capture(cam, rounds))
            senders[INFERENCE_PROCESS].beat(**feed.inference(rounds, now))
            senders[ALERTS_PROCESS].beat(**feed.alerts(rounds, now))
            rounds += 1
            stop.wait(0.5)
    finally:
        for sender in senders.values():
            sender.close()
    return rounds


def _demo_capture(cam: str, k: int) -> dict[str, Any]:
    return {
        "camera": cam,
        "state": "online",
        "counters": {"frames_total": 5 * k, "fps": 10.0, "reconnects_total": 0},
        "info": {"source": f"file://demo/{cam}.avi", "resolution": "768x576"},
    }


class _DemoFeed:
    """Made-up inference and alert bodies in the real schema (histograms, recent scores)."""

    def __init__(self, cameras: list[str]) -> None:
        self.cameras = cameras
        self.rng = random.Random(0)
        self.scores: dict[str, list[float]] = {c: [] for c in cameras}
        self.latency = Histogram(INFERENCE_LATENCY_BUCKETS)
        self.alert_latency = Histogram(ALERT_LATENCY_BUCKETS)

    def inference(self, k: int, now: float) -> dict[str, Any]:
        info: dict[str, Any] = {"device": "cpu", "precision": "fp32", "mode": "demo"}
        cams: dict[str, Any] = {}
        for i, cam in enumerate(self.cameras):
            noise = self.rng.uniform(-0.05, 0.05)
            score = round(min(1.0, max(0.0, 0.5 + 0.45 * math.sin(k / 5 + i) + noise)), 3)
            self.scores[cam] = (self.scores[cam] + [score])[-MAX_RECENT_SCORES:]
            self.latency.observe(0.04 + 0.005 * i)
            cams[cam] = {
                "score": score,
                "label": "Abnormal" if score >= 0.5 else "Normal",
                "label_prob": round(max(score, 1 - score), 3),
                "fps": 2.0,
                "skipped_total": k // 10,
                "snippets_total": k + 1,
                "latency_ms": 40.0 + 5 * i,
                "last_ts": now,
                "recent_scores": self.scores[cam],
            }
        return {"info": {**info, "cameras": cams, "latency": self.latency.body()}}

    def alerts(self, k: int, now: float) -> dict[str, Any]:
        events = [
            {
                "id": f"demo-{cam}",
                "camera": cam,
                "label": "Abnormal",
                "prob": 0.9,
                "start": now - 5.0,
                "duration": 5.0,
                "kind": "update",
            }
            for cam in self.cameras[:3]
        ]
        self.alert_latency.observe(0.15)
        counters = {"pending": 0, "delivered": k + 1, "retrying": 0, "dead": 0}
        counters["events_total"] = len(events)
        info = {"webhooks": 1, "recent_events": events, "alert_latency": self.alert_latency.body()}
        return {"counters": counters, "info": info}


# --- command line -----------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m vadmon.dashboard", description=__doc__.splitlines()[0]
    )
    mode = p.add_mutually_exclusive_group(required=True)
    mode.add_argument("--listen", metavar="ENDPOINT", help="bind PULL here and show heartbeats")
    mode.add_argument("--demo-feed", metavar="ENDPOINT", help="send synthetic heartbeats here")
    p.add_argument("--cameras", default="", help="comma-separated camera names to show/feed")
    p.add_argument("--banner", default=None, help="text for the banner line")
    p.add_argument("--demo-banner", action="store_true", help=f'banner "{DEMO_BANNER}"')
    p.add_argument("--outbox", type=Path, default=None, help="SQLite outbox to read counts from")
    p.add_argument("--refresh-hz", type=float, default=4.0)
    p.add_argument("--prometheus-port", type=int, default=None, help="serve /metrics here")
    p.add_argument("--force", action="store_true", help="draw even when stdout is no terminal")
    p.add_argument("--duration", type=float, default=None, help="stop after this many seconds")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    cameras = [c.strip() for c in args.cameras.split(",") if c.strip()]
    try:
        if args.demo_feed:
            demo_feed(args.demo_feed, cameras or ["demo-door", "demo-yard"], stop, args.duration)
            return 0
        return _run_viewer(args, cameras, stop)
    except VadmonError as exc:
        print(f"vadmon dashboard: error: {exc.line()}", file=sys.stderr)
        return 2


def _run_viewer(args: argparse.Namespace, cameras: list[str], stop: threading.Event) -> int:
    if args.outbox is not None and not args.outbox.is_file():
        raise VadmonError(f"outbox {args.outbox} does not exist", "--outbox", "give the alert db")
    banner = DEMO_BANNER if args.demo_banner else args.banner
    config = DashboardConfig(enabled=True if args.force else "auto", refresh_hz=args.refresh_hz)
    dashboard = Dashboard(config, cameras=cameras, banner=banner)
    if not dashboard.enabled:
        print("vadmon dashboard: stdout is not a terminal; drawing off (--force)", file=sys.stderr)
    exporter = start_exporter(MetricsConfig(prometheus_port=args.prometheus_port), dashboard.state)
    try:
        listen(args.listen, dashboard, stop, args.duration, args.outbox)
    finally:
        if exporter is not None:
            exporter.stop()
    return 0
