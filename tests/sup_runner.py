"""``python tests/sup_runner.py --spec F``: the real supervisor on its own, for any children.

The monitor builds its supervisor in-process (``vadmon.monitor``); the supervisor's tests run
one as its own process from a JSON spec of children and policy (test-only, so not in vadmon/).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from vadmon.config import SupervisorConfig
from vadmon.runtime.child import ChildSpec
from vadmon.runtime.cleanup import Cleanup
from vadmon.runtime.supervisor import Supervisor


def load_specs(path: Path) -> tuple[list[ChildSpec], SupervisorConfig]:
    """``{"children": [ChildSpec fields...], "policy": {SupervisorConfig fields}}``."""
    data = json.loads(path.read_text())
    specs = [ChildSpec(**entry) for entry in data["children"]]
    return specs, SupervisorConfig(**data.get("policy", {}))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python tests/sup_runner.py", description="Run and watch child processes."
    )
    parser.add_argument("--spec", type=Path, required=True, help="JSON file with children/policy")
    parser.add_argument("--heartbeat", help="endpoint to bind for heartbeats (ipc:// or tcp://)")
    parser.add_argument("--cleanup-path", action="append", default=[], type=Path)
    parser.add_argument("--shm-prefix", action="append", default=[])
    parser.add_argument("--systemd", action="store_true", help="sd_notify READY/WATCHDOG")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="vadmon supervisor: %(message)s")
    specs, policy = load_specs(args.spec)
    supervisor = Supervisor(
        specs,
        policy,
        heartbeat_endpoint=args.heartbeat,
        cleanup=Cleanup(paths=args.cleanup_path, shm_prefixes=args.shm_prefix),
        systemd=args.systemd,
    )
    return supervisor.run()


if __name__ == "__main__":
    sys.exit(main())
