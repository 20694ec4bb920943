"""The ``vadmon`` command: a thin dispatcher over library functions.

Each subcommand lives in ``vadmon/commands/<name>.py`` and exposes ``register(subparsers)``;
the registered handler receives the parsed ``argparse.Namespace`` and returns an exit code.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from vadmon import __version__
from vadmon.errors import VadmonError

COMMANDS: list[str] = [
    "vadmon.commands.import_checkpoint",
    "vadmon.commands.score",
    "vadmon.commands.extract",
    "vadmon.commands.train",
    "vadmon.commands.eval",
    "vadmon.commands.config",
    "vadmon.commands.models",
    "vadmon.commands.keys",
    "vadmon.commands.secret",
    "vadmon.commands.events",
    "vadmon.commands.replay",
    "vadmon.commands.calibrate",
    "vadmon.commands.run",
    "vadmon.commands.bench",
    "vadmon.commands.encoder",
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="vadmon",
        description="vadmon: real-time video anomaly monitor built on VadCLIP.",
    )
    parser.add_argument("--version", action="version", version=f"vadmon {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    for name in COMMANDS:
        importlib.import_module(name).register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.handler(args) or 0)
    except VadmonError as exc:
        print(f"vadmon {args.command}: error: {exc.line()}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"vadmon {args.command}: interrupted", file=sys.stderr)
        return 130
    finally:
        # the command's sockets are closed; its ZeroMQ context last, if it made one (a
        # command that never touched ZeroMQ does not import it here just to find none)
        made = sys.modules.get("vadmon.runtime.zmq_context")
        if made is not None:
            made.close_process_context()


if __name__ == "__main__":
    sys.exit(main())
