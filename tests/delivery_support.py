"""Helpers shared by tests (moved from test_delivery.py; test modules import only *_support modules)."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from config_support import delivery_settings, endpoint

from vadmon.alerts.delivery import DeliveryWorker, build_body, new_msg_id
from vadmon.alerts.outbox import Outbox
from vadmon.alerts.signing import generate_secret

SECRET = generate_secret()


def event(i: int = 0) -> dict:
    return {"id": f"1700000000.{i:06d}-abcdef", "camera": "lobby", "label": "Fighting",
            "label_prob": 0.9, "start_ts": 1_700_000_000.0 + i, "end_ts": None,
            "peak_score": 0.97, "peak_ts": 1_700_000_001.0}  # fmt: skip


def setup(
    tmp_path: Path, url: str, allow_private: bool = True, **kw
) -> tuple[Outbox, DeliveryWorker]:
    retry = dict(max_attempts=5, backoff_initial_s=0.05, timeout_s=1.0)
    retry.update({k: kw.pop(k) for k in list(kw) if k in retry})
    ep = endpoint("main", url, SECRET, allow_private, **retry)
    db = tmp_path / "outbox.db"
    settings = delivery_settings((ep,), **{"poll_interval_s": 0.05, **kw})
    return Outbox(db), DeliveryWorker(str(db), settings)


def enqueue(outbox: Outbox, i: int = 0, kind: str = "start") -> str:
    msg_id = new_msg_id()
    outbox.enqueue(event(i), kind, msg_id, build_body(kind, event(i)), ["main"])
    return msg_id


def drain(worker: DeliveryWorker, outbox: Outbox, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while outbox.counts()["pending"] and time.monotonic() < deadline:
        run_once(worker)
        time.sleep(0.01)
    assert outbox.counts()["pending"] == 0, "deliveries still pending after timeout"


def run_once(worker: DeliveryWorker) -> int:
    """Deliver everything due now, synchronously, on this thread: what the worker thread does
    in one pass (the tests drive it step by step instead of waiting for its poll)."""
    return asyncio.run(worker._once_with_client())
