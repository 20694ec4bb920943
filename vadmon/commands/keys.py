"""``vadmon keys generate NAME`` / ``vadmon keys show FILE``: CURVE key files for tcp links."""

from __future__ import annotations

import argparse
from pathlib import Path

from vadmon.runtime.security import generate_keypair, load_public_key


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("keys", help="create CURVE key pairs for tcp:// links")
    sub = parser.add_subparsers(dest="keys_command", required=True)
    gen = sub.add_parser("generate", help="write NAME.key (public) and NAME.key_secret (0600)")
    gen.add_argument("name", help="key name, e.g. 'server' or a host name")
    gen.add_argument("--dir", type=Path, default=Path("keys"), help="output directory (keys/)")
    gen.add_argument("--force", action="store_true", help="overwrite existing files")
    gen.set_defaults(handler=run_generate)
    show = sub.add_parser("show", help="print the public key of a .key or .key_secret file")
    show.add_argument("file", type=Path)
    show.set_defaults(handler=run_show)


def run_generate(args: argparse.Namespace) -> int:
    public_path, secret_path = generate_keypair(args.dir, args.name, force=args.force)
    print(f"public key:  {public_path}  ({load_public_key(public_path).decode()})")
    print(f"secret key:  {secret_path}  (mode 0600; never share it)")
    print(
        "servers list accepted clients by copying their .key file into "
        "transport.curve.allowed_clients_dir"
    )
    return 0


def run_show(args: argparse.Namespace) -> int:
    print(load_public_key(args.file).decode())
    return 0
