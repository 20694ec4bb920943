"""``vadmon score``: one feature file through the published test protocol."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from vadmon.atomic import atomic_path
from vadmon.errors import VadmonError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "score",
        help="score one [T, D] feature file (.npy) with a vadmon checkpoint",
        description="Writes per-snippet arrays coarse (C-Branch sigmoid), fine (1 − normal "
        "posterior) and class_probs [T, C] to an .npz file.",
    )
    p.add_argument("checkpoint", type=Path)
    p.add_argument("features", type=Path, help=".npy of shape [T, D]")
    p.add_argument("-o", "--output", type=Path, required=True, help=".npz to write")
    p.add_argument("--device", default="auto", help="auto (CUDA when present), cpu, cuda[:N]")
    p.add_argument("--classes", help="comma-separated class names (default: the checkpoint's)")
    p.set_defaults(handler=run)


def load_features(path: Path) -> np.ndarray:
    if not path.is_file():
        raise VadmonError(f"feature file not found: {path}", fix="check the path")
    try:
        arr = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        raise VadmonError(
            f"cannot read feature file ({str(exc)[:120]})",
            where=str(path),
            fix="pass a .npy array of shape [T, D] written by vadmon extract",
        ) from None
    if not isinstance(arr, np.ndarray) or arr.dtype.kind not in "fiu":
        raise VadmonError("feature file is not a numeric array", where=str(path))
    return arr


def run(args: argparse.Namespace) -> int:
    from vadmon.model import checkpoint as ckpt_mod
    from vadmon.model import score_features
    from vadmon.research.provenance import UNCHECKED, check_checkpoint

    features = load_features(args.features)
    ck = ckpt_mod.load(args.checkpoint)
    # checked before scoring; the note once the features proved usable (bad input: one line)
    unchecked = check_checkpoint(ck, [args.features], str(args.checkpoint)) is None
    try:
        model = ck.build(args.device)
    except VadmonError as exc:
        raise VadmonError(exc.what, str(args.checkpoint), exc.fix) from None
    names = None
    if args.classes:
        names = [c.strip() for c in args.classes.split(",") if c.strip()]
    result = score_features(model, features, class_names=names, where=str(args.features))
    if unchecked:
        print(UNCHECKED, file=sys.stderr)
    names = names or model.config.class_names
    out = args.output
    with atomic_path(out, suffix=".npz") as tmp:
        np.savez(tmp, **result, class_names=np.array(names))
    top = float(result["coarse"].max())
    print(f"scored {len(result['coarse'])} snippets → {out} (max coarse score {top:.3f})")
    return 0
