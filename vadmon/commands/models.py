"""``vadmon models``: which weights this host has, and what each config needs of them.

A newcomer's first question after the demo is "which file do I need, and where does it go";
this answers it from the disk alone (no network), and ``--fetch ARCH/TAG`` is the one explicit
way to put an open_clip tag into the local cache on a host that has network.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from vadmon.errors import VadmonError
from vadmon.startup import weights


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "models",
        help="list local weights and what each config needs (see models/README.md)",
        description="List the weights on this host (checkpoints, the open_clip cache) and, for "
        "each config, which weights it needs, whether they are here and how to get them.",
    )
    p.add_argument("configs", nargs="*", type=Path, help="configs to check (default: configs/)")
    p.add_argument("--models-dir", type=Path, default=Path("models"), help="checkpoint folder")
    p.add_argument("--fetch", metavar="ARCH/TAG", help="download an open_clip tag into the cache")
    p.set_defaults(handler=run)


def _size(path: Path) -> str:
    return f"{path.stat().st_size / 1e6:.0f} MB"


def local_weights(models_dir: Path) -> list[str]:
    """Checkpoint files in ``models_dir`` and open_clip weights in the hub cache."""
    lines = [
        f"  checkpoint  {p} ({_size(p)})"
        for p in sorted(models_dir.glob("*"))
        if p.is_file() and p.suffix in (".pt", ".pth")
    ]
    cache = weights.hub_cache_dir()
    for repo in sorted(cache.glob("models--*")) if cache.is_dir() else []:
        for name in weights.HUB_FILES:
            for hit in sorted(repo.glob(f"snapshots/*/{name}")):
                lines.append(f"  open_clip   {repo.name[8:].replace('--', '/')} ({_size(hit)})")
    return lines or ["  (none)"]


class _AnyEnv(dict):
    """Every ``${VAR}`` reads as set: which weights a config needs does not depend on secrets
    (an unset one reads as a well-formed dummy webhook secret, valid anywhere a string is)."""

    def __contains__(self, key: object) -> bool:
        return True

    def __getitem__(self, key: str) -> str:
        return os.environ.get(key, "whsec_" + "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=")


def config_needs(paths: list[Path]) -> list[str]:
    """One line per weight source per config: present or missing, and how to get it."""
    from vadmon.config import load_config

    lines = []
    for path in paths:
        try:
            cfg = load_config(path, env=_AnyEnv())
        except VadmonError as exc:
            lines.append(f"  {path}: cannot read ({exc.what})")
            continue
        if cfg.model is None:
            lines.append(f"  {path}: capture only, no weights")
            continue
        for src in weights.sources(cfg.model):
            state = "present" if src.present else "MISSING"
            lines.append(f"  {path}: {src.kind} {src.name} — {state} ({src.location})")
            if not src.present:
                lines.append(f"      get it: {src.how}")
    return lines


def fetch(spec: str) -> int:
    """Download ``ARCH/TAG`` with open_clip into its cache (needs network)."""
    arch, _, tag = spec.partition("/")
    if not arch or not tag:
        raise VadmonError(f"expected ARCH/TAG (got {spec!r})", "--fetch", "e.g. ViT-B-16/openai")
    from open_clip.pretrained import download_pretrained, get_pretrained_cfg

    cfg = get_pretrained_cfg(arch, tag)
    if not cfg:
        raise VadmonError(f"open_clip has no tag {tag!r} for {arch}", "--fetch")
    try:
        path = download_pretrained(cfg)
    except Exception as exc:  # hub and network stacks raise many types
        raise VadmonError(
            f"cannot fetch {spec} ({type(exc).__name__})",
            "--fetch",
            f"run it on a host with network and copy {weights.hub_cache_dir()} here",
        ) from None
    print(f"{spec}: {path}")
    return 0


def run(args: argparse.Namespace) -> int:
    if args.fetch:
        return fetch(args.fetch)
    print("weights on this host:")
    print("\n".join(local_weights(args.models_dir)))
    paths = args.configs or sorted(Path("configs").glob("*.yaml"))
    print("what each config needs:")
    print("\n".join(config_needs(paths) or ["  (no configs)"]))
    print(f"where to get them: {weights.GUIDE}")
    return 0
