"""``vadmon import-checkpoint``: published VadCLIP ``.pth`` → vadmon checkpoint."""

from __future__ import annotations

import argparse
from pathlib import Path

from vadmon.commands import preset_help
from vadmon.errors import VadmonError
from vadmon.model.config import list_presets


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "import-checkpoint",
        help="convert a published VadCLIP checkpoint (model_ucf.pth / model_xd.pth)",
        description="Convert a published VadCLIP state_dict (including its CLIP weights) into a "
        "self-describing vadmon checkpoint.",
    )
    p.add_argument("source", type=Path, help="published checkpoint (.pth)")
    p.add_argument(
        "--preset",
        required=True,
        choices=list_presets(),
        help=preset_help("heads, window and class names of the published model"),
    )
    p.add_argument("-o", "--output", type=Path, required=True, help="vadmon checkpoint to write")
    p.add_argument(
        "--class-names",
        help="comma-separated class names overriding the preset's (same count, normal first)",
    )
    p.add_argument("--attn-window", type=int, help="override the preset's attention window")
    p.add_argument("--heads", type=int, help="override the preset's adapter heads")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from vadmon.model import checkpoint
    from vadmon.model.config import load_preset

    preset = load_preset(args.preset)
    names = preset.model["class_names"]
    if args.class_names:
        given = [c.strip() for c in args.class_names.split(",") if c.strip()]
        if len(given) != len(names):
            raise VadmonError(
                f"--class-names has {len(given)} classes but preset {args.preset!r} has "
                f"{len(names)}",
                fix="give one name per preset class, normal first",
            )
        names = given
    cfg = preset.model_config(
        class_names=names, attn_window=args.attn_window, visual_head=args.heads
    )
    ckpt = checkpoint.import_published(args.source, cfg, preset.label_map)
    ckpt.meta["preset"] = preset.name
    checkpoint.save(ckpt, args.output)
    c = ckpt.config
    print(
        f"imported {args.source.name} → {args.output} ({c.num_classes} classes, "
        f"L={c.visual_length}, D={c.visual_width}, layers={c.visual_layers}, "
        f"window={c.attn_window})"
    )
    return 0
