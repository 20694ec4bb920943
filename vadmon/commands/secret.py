"""``vadmon secret generate``: a webhook signing secret (``whsec_`` + base64 of random bytes).

The receiver and the monitor share it: put it in the environment the monitor reads
(``secret: ${VADMON_WEBHOOK_SECRET}`` in the config) and in the receiver's settings.
"""

from __future__ import annotations

import argparse

from vadmon.alerts.signing import MIN_KEY_BYTES, generate_secret
from vadmon.errors import VadmonError


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("secret", help="create webhook signing secrets")
    sub = parser.add_subparsers(dest="secret_command", required=True)
    gen = sub.add_parser(
        "generate",
        help="print a new whsec_ secret (Standard Webhooks format) on stdout",
        description="A webhook signing secret: whsec_ + base64 of random bytes. Give the same "
        "value to the monitor (secret: ${VADMON_WEBHOOK_SECRET}) and to the receiver.",
    )
    gen.add_argument(
        "--bytes",
        type=int,
        default=32,
        help=f"random key length in bytes ({MIN_KEY_BYTES}-64, default 32)",
    )
    gen.set_defaults(handler=run_generate)


def run_generate(args: argparse.Namespace) -> int:
    if not MIN_KEY_BYTES <= args.bytes <= 64:
        raise VadmonError(
            f"--bytes {args.bytes} is out of range", "vadmon secret generate",
            f"use {MIN_KEY_BYTES} to 64",
        )  # fmt: skip
    print(generate_secret(args.bytes))
    return 0
