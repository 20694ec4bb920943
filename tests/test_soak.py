"""Soak: N cameras for a while with faults injected; memory flat, no alert lost, no traceback.

Short in CI (3 cameras × 60 s); ``VADMON_SOAK_S=3600`` runs it for an hour.
Faults: inference SIGKILLed at 25 %, one capture SIGKILLed at 50 %, and the webhook receiver
answers 500 to its first requests (delivery must retry with the same webhook-id).
"""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import pytest
from capture_support import wait_for
from monitor_support import Listener, Monitor, outbox_drained, rss_kib, write_config
from webhook_receiver import Receiver

from vadmon.alerts.outbox import Outbox
from vadmon.alerts.signing import generate_secret
from vadmon.config import load_config

pytestmark = pytest.mark.slow
FLASHING = "synthetic:w=320&h=240&fps=10&flash=12&flash_len=30"
CAMERAS = {f"cam{i}": FLASHING for i in range(3)}
# after (re)start: imports, model load, and the alert process's 30 s preview ring filling up
WARMUP_S = 35.0


def soak_seconds() -> float:
    return float(os.environ.get("VADMON_SOAK_S", "60"))


class RssProbe:
    """First sample ``WARMUP_S`` after a process (re)started, last sample at the end."""

    def __init__(self) -> None:
        self.first: dict[str, tuple[int, int]] = {}  # name → (pid, KiB)
        self.last: dict[str, tuple[int, int]] = {}
        self.seen: dict[int, float] = {}

    def sample(self, processes: dict[str, int]) -> None:
        now = time.monotonic()
        for name, pid in processes.items():
            self.seen.setdefault(pid, now)
            if now - self.seen[pid] < WARMUP_S:
                continue
            try:
                kib = rss_kib(pid)
            except OSError:
                continue
            if self.first.get(name, (None,))[0] != pid:
                self.first[name] = (pid, kib)
            self.last[name] = (pid, kib)

    def growth(self) -> dict[str, tuple[int, int]]:
        return {n: (self.first[n][1], self.last[n][1]) for n in self.last if n in self.first}


def test_soak_with_faults(
    tmp_path: Path, subprocess_env: dict[str, str], demo_checkpoint: Path
) -> None:
    duration = soak_seconds()
    secret = generate_secret()
    env = {**subprocess_env, "HOOK_SECRET": secret}
    with Receiver([secret], script=[("status", 500, {})] * 6) as hook:
        hooks = f"""webhooks:
  - name: receiver
    url: {hook.url}
    secret: "${{HOOK_SECRET}}"
    allow_private: true
    max_attempts: 100
    backoff_initial_s: 0.3
    backoff_max_s: 2"""
        cfg = write_config(
            tmp_path / "soak.yaml", CAMERAS, demo_checkpoint, extra=hooks,
            alerts="threshold: 0.6, min_duration_s: 1.0, cutoff_s: 1.5, cooldown_s: 2",
        )  # fmt: skip
        conf = load_config(cfg, env)
        mon = Monitor(cfg, env).start()
        listen = Listener(conf.ipc_dir(), list(CAMERAS))
        probe = RssProbe()
        try:
            assert wait_for(lambda: all(listen.scores_for(c) for c in CAMERAS), 240), mon.output()[
                -3000:
            ]
            start = time.monotonic()
            faults = [(0.25, "inference"), (0.5, "capture:cam1")]
            while (elapsed := time.monotonic() - start) < duration:
                kids = mon.children()
                kids.pop("janitor", None)
                probe.sample({"supervisor": mon.pid, **kids})
                if faults and elapsed >= faults[0][0] * duration:
                    os.kill(kids[faults.pop(0)[1]], signal.SIGKILL)
                time.sleep(1.0)
            assert mon.proc.poll() is None, mon.output()[-3000:]
            assert len(hook.requests) > 6, "no event got past the receiver's 500s"

            assert wait_for(lambda: outbox_drained(conf.storage.outbox_db), 60, 0.5)
            assert mon.stop() == 0
        finally:
            listen.close()
            mon.kill_all()
        reader = Outbox(conf.storage.outbox_db, readonly=True)
        deliveries = reader.deliveries()
        reader.close()
        received = {r.verified for r in hook.verified()}
    assert "Traceback" not in mon.output(), mon.output()[-4000:]
    starts = [d for d in deliveries if d.kind == "start"]
    cams = {json.loads(d.payload)["data"]["camera"] for d in starts}
    assert cams == set(CAMERAS), f"events only from {cams}"
    lost = [d.msg_id for d in deliveries if d.msg_id not in received]
    assert not lost, f"{len(lost)} of {len(deliveries)} webhooks never arrived"
    assert all(d.status == "delivered" for d in deliveries)
    retried = [d for d in deliveries if d.attempts > 1]
    assert retried, "the receiver's 500s must have forced retries"
    growth = probe.growth()
    report = ", ".join(f"{n}: {a / 1024:.0f}→{b / 1024:.0f} MiB" for n, (a, b) in growth.items())
    print(f"\nsoak {duration:.0f} s, RSS after warm-up: {report}")
    assert {"supervisor", "alerts", "capture:cam0", "capture:cam2"} <= growth.keys(), growth
    for name, (first, last) in growth.items():
        allowed = max(16 * 1024, first // 10)  # 16 MiB or 10 %, whichever is larger
        assert last - first < allowed, f"{name} RSS grew {first} → {last} KiB"
