"""The inference process while its model loads: say so, keep beating, stop at once on SIGTERM.

Why: loading ViT-B/16 takes 17–47 s on a loaded CPU. Before, the process sent nothing in that
time (the dashboard showed "inference —", service mode said nothing) and a SIGTERM only set a
flag nobody read until the load finished, so the supervisor's deadline ran out and it SIGKILLed
("inference ignored SIGTERM"). Now a thread sends a "loading model" heartbeat every second
(``info.loading_s``), and SIGTERM/SIGINT during the load exit the process right away: there is
nothing to flush yet.
"""

from __future__ import annotations

import contextlib
import gc
import logging
import signal
import sys
import threading
import time
from collections.abc import Iterator

from vadmon.runtime.heartbeat import HeartbeatSender
from vadmon.runtime.status_schema import InferenceInfo, InferenceStatus

log = logging.getLogger("vadmon.inference")
BEAT_S = 1.0


def _beat_until(done: threading.Event, mode: str, t0: float) -> None:
    sender = HeartbeatSender.from_env()  # its own socket: zmq sockets stay on one thread
    if sender is None:
        return
    try:
        while True:
            loading = round(time.monotonic() - t0, 1)
            sender.beat(InferenceStatus(info=InferenceInfo(mode=mode[:12], loading_s=loading)))
            if done.wait(BEAT_S):
                return
    finally:
        sender.close()


def _exit_now(signum: int, _frame: object) -> None:
    print(
        f"vadmon inference: {signal.Signals(signum).name} while loading the model: stopping",
        file=sys.stderr,
        flush=True,
    )
    gc.freeze()  # the final collection of a half-built torch model takes seconds: skip it
    raise SystemExit(0)


@contextlib.contextmanager
def model_loading(mode: str, what: str) -> Iterator[None]:
    """Around the model load: "loading model" heartbeats and log lines, immediate stop."""
    t0 = time.monotonic()
    log.info("loading model: %s", what)
    previous = {s: signal.signal(s, _exit_now) for s in (signal.SIGTERM, signal.SIGINT)}
    done = threading.Event()
    beater = threading.Thread(target=_beat_until, args=(done, mode, t0), daemon=True)
    beater.start()
    try:
        yield
    finally:
        done.set()
        beater.join(2.0)
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    log.info("model loaded in %.1f s", time.monotonic() - t0)
