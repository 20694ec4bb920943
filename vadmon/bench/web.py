"""``vadmon bench web``: event-list API latency with 10,000 events in the database.

A real web process (``python -m vadmon.web``, uvicorn) over an outbox holding 10,000 closed
events (1,000 with ``--quick``) on four cameras, one client on a kept-alive connection. Each
row is the p95 of the request's wall time; the baseline is ``/api/health`` on the same server
(HTTP, auth and JSON with no database work), so the ratio is what the query itself costs.
The deep-page row fetches the page 9,000 events back through its keyset cursor.
"""

from __future__ import annotations

import os
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from vadmon.alerts.lifecycle import EventRowState
from vadmon.alerts.outbox import Outbox
from vadmon.alerts.outbox_db import upsert_event
from vadmon.bench.core import BenchOptions, BenchResult, Row
from vadmon.model.precision import cpu_model

CAMERAS = ("door", "yard", "gate", "hall")
LABELS = ("fighting", "explosion", "arson", "abuse")


def _config(root: Path, port: int) -> Path:
    path = root / "bench-web.yaml"
    cams = "".join(f'  {c}: {{source: "synthetic:"}}\n' for c in CAMERAS)
    path.write_text(
        f"instance: bench-web-{port}\ncameras:\n{cams}model: {{mode: vadclip, checkpoint: x.pt}}\n"
        f"storage: {{dir: {root / 'data'}}}\ntransport: {{ipc_dir: {root / 'ipc'}}}\n"
        f"web: {{enabled: true, listen: '127.0.0.1:{port}', auth: {{token: '${{BENCH_TOKEN}}'}}}}\n"
    )
    return path


def fill(db: Path, n: int, t0: float = 1_700_000_000.0) -> None:
    """``n`` closed events through the outbox's own writer, in one transaction."""
    box = Outbox(db)
    try:
        with box._tx() as conn:  # one commit, not 10,000 fsyncs
            for i in range(n):
                ts = t0 + i * 37.0
                ev = {
                    "id": f"{ts:.6f}-b{i:05d}", "camera": CAMERAS[i % 4], "label": LABELS[i % 3],
                    "label_prob": 0.6, "start_ts": ts, "end_ts": ts + 4.0, "peak_score": 0.8,
                    "peak_ts": ts + 2.0, "duration_s": 4.0, "text": "bench event",
                    "explanation": {"text": "anomaly score peaked at 0.80"},
                    "snapshot_path": f"/nonexistent/{i}.jpg",
                }  # fmt: skip
                upsert_event(conn, ev, EventRowState.CLOSED, ts)
    finally:
        box.close()


def _p95_ms(client: httpx.Client, path: str, params: dict, n: int) -> tuple[float, float]:
    times = []
    for _ in range(n):
        start = time.perf_counter()
        resp = client.get(path, params=params)
        times.append(time.perf_counter() - start)
        resp.raise_for_status()
    times.sort()
    return times[int(0.95 * (len(times) - 1))] * 1000, statistics.median(times) * 1000


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _deep_cursor(client: httpx.Client, depth: int) -> str:
    cursor, seen = None, 0
    while seen < depth:
        params = {"limit": min(500, depth - seen), **({"cursor": cursor} if cursor else {})}
        page = client.get("/api/events", params=params).json()
        seen += len(page["events"])
        cursor = page["next_cursor"]
    assert cursor is not None
    return cursor


def run(opts: BenchOptions) -> BenchResult:
    n_events = 1_000 if opts.quick else 10_000
    requests = 50 if opts.quick else 300
    token = secrets.token_urlsafe(24)
    with tempfile.TemporaryDirectory(prefix="vbweb-", dir="/tmp") as tmp:
        root = Path(tmp)
        port = _free_port()
        config = _config(root, port)
        fill(root / "data" / "outbox.sqlite", n_events)
        env = {**os.environ, "BENCH_TOKEN": token}
        argv = [sys.executable, "-m", "vadmon.web", "--config", str(config)]
        proc = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        headers = {"authorization": f"Bearer {token}"}
        try:
            client = httpx.Client(
                base_url=f"http://127.0.0.1:{port}", headers=headers, trust_env=False, timeout=30
            )
            _wait(client, proc)
            cases = {
                "health (baseline)": ("/api/health", {}),
                "first page, 50 events": ("/api/events", {"limit": 50}),
                "camera filter, 50 events": ("/api/events", {"camera": "gate", "limit": 50}),
                "label filter, 50 events": ("/api/events", {"label": "arson", "limit": 50}),
                f"page at {int(n_events * 0.9)} back, 50 events": (
                    "/api/events",
                    {"limit": 50, "cursor": _deep_cursor(client, int(n_events * 0.9))},
                ),
            }
            measured = {name: _p95_ms(client, *case, requests) for name, case in cases.items()}
            client.close()
        finally:
            proc.terminate()
            proc.wait(10)
    base = measured["health (baseline)"][0]
    rows = [
        Row(
            name,
            "event list API",
            round(p95, 2),
            "ms p95",
            round(base / p95, 3),
            "health (baseline)",
            {"events": n_events, "requests": requests, "median_ms": round(med, 2)},
        )  # fmt: skip
        for name, (p95, med) in measured.items()
    ]
    notes = [
        f"{n_events} events in the outbox, {requests} sequential requests per row, one "
        f"kept-alive connection, CPU {cpu_model()}, load {os.getloadavg()[0]:.1f}",
    ]
    return BenchResult("web", "event-list API latency (p95)", "ms", rows, notes)


def _wait(client: httpx.Client, proc: subprocess.Popen, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"web process exited: {proc.stderr.read().decode()[-1000:]}")
        try:
            client.get("/api/health").raise_for_status()
            return
        except httpx.HTTPError:
            time.sleep(0.05)
    raise RuntimeError("web process not ready")
