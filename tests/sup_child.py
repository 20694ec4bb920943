"""Small child programs for the supervisor tests: ``python tests/sup_child.py MODE DIR``.

Every start appends ``pid`` to ``DIR/<name>.pids`` so tests can follow restarts; the line is
written after the child's signal handlers are installed, so it doubles as a readiness signal.
"""

from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path

from vadmon.runtime.heartbeat import HeartbeatSender, report_fatal
from vadmon.runtime.zmq_context import close_process_context


def main() -> int:
    mode, directory = sys.argv[1], Path(sys.argv[2])
    name = os.environ.get("VADMON_PROCESS_NAME", mode)
    if mode == "ignore_term":
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    # the pid line is the readiness signal: written only once the signal handlers are in place
    with open(directory / f"{name}.pids", "a") as f:
        f.write(f"{os.getpid()}\n")
    if mode == "crash":
        time.sleep(0.1)
        return 3
    if mode == "exit0":
        return 0
    if mode == "bad_input":  # what a vadmon process does on a config error
        print("sup_child: error: bad source in config", file=sys.stderr)
        report_fatal("bad source in config: in cameras.door.source")
        return 2
    sender = HeartbeatSender.from_env() if mode in ("beat", "hostile") else None
    # hostile: a wrong-typed field in an otherwise well-formed capture status
    body = {"counters": {"fps": "x"}} if mode == "hostile" else {"state": "online"}
    deadline = time.monotonic() + 120  # never outlive a broken test run by much
    while time.monotonic() < deadline:
        if sender is not None:
            sender.beat(**body)
        time.sleep(0.05)
    return 0


if __name__ == "__main__":
    try:
        code = main()
    finally:
        close_process_context()  # what runtime/entry does: the fatal report leaves first
    sys.exit(code)
