"""``vadmon extract``: CLIP snippet features of video files in the published VadCLIP layout."""

from __future__ import annotations

import argparse
from pathlib import Path

from vadmon.errors import VadmonError

# torch/open_clip load lazily: every `vadmon` command (the long-lived `vadmon run` supervisor
# too) registers this parser, and importing torch here would cost each of them ~500 MB.
CROP_MODE_NAMES = ("10crop", "center")  # = sorted(vadmon.model.crops.CROP_MODES); tested


def add_clip_args(
    p: argparse.ArgumentParser, default_arch: str | None, default_pretrained: str | None
) -> None:
    """``--clip-arch/--clip-pretrained``: one spelling, in every command that builds a CLIP tower,
    matching ``model.clip_arch/model.clip_pretrained`` in the config."""
    p.add_argument("--clip-arch", default=default_arch, help="open_clip architecture name")
    p.add_argument(
        "--clip-pretrained",
        default=default_pretrained,
        help="open_clip tag or local weights file ('' = seeded random tower)",
    )


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "extract",
        help="extract per-snippet CLIP features from videos",
        description="Writes <out>/<dir>/<video>__<crop>.npy (float32 [frames//16, D]) and "
        "list CSVs (path,label). Re-running skips videos that are already complete.",
    )
    p.add_argument(
        "inputs", nargs="+", type=Path, help="video files or directories (searched recursively)"
    )
    p.add_argument("--out", "-o", type=Path, required=True, help="output directory")
    p.add_argument("--crop-mode", choices=CROP_MODE_NAMES, default="10crop")
    p.add_argument(
        "--frames-per-snippet",
        type=int,
        default=1,
        help="frames encoded and averaged per 16-frame snippet (1 = middle frame; cost ×k)",
    )
    p.add_argument("--batch-size", type=int, default=64, help="images per encoder call")
    p.add_argument("--labels", type=Path, help="CSV 'video,label' (default: parent folder name)")
    add_clip_args(p, "ViT-B-16", "openai")
    # the spellings before 0.2, kept working but not shown
    p.add_argument("--arch", dest="clip_arch", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    p.add_argument(
        "--pretrained", dest="clip_pretrained", default=argparse.SUPPRESS, help=argparse.SUPPRESS
    )
    p.add_argument("--device", default="auto", help="auto (CUDA when present), cpu, cuda[:N]")
    p.add_argument("--precision", default="fp32", help="fp32, bf16, fp16 or auto")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(handler=run)


def _encoder(args: argparse.Namespace):
    """The CLIP image encoder, the preprocessing its own config asks for (size, mean, std), and
    the tower's identity for the features' sidecar (weights hashed in fp32, before casting)."""
    import torch

    from vadmon.model.clip_factory import (
        create_clip,
        encode_images,
        image_spec,
        resolve_device,
        resolve_precision,
        set_image_precision,
    )
    from vadmon.model.crops import ClipPreprocess
    from vadmon.model.precision import check as check_precision
    from vadmon.research.provenance import clip_checksum, embed_width

    check_precision(args.precision)  # an unknown name is one line, before any model is built
    model = create_clip(args.clip_arch, args.clip_pretrained or None, device=args.device)
    checksum, width = clip_checksum(model), embed_width(model)
    precision = resolve_precision(args.precision, resolve_device(args.device), args.clip_arch)
    set_image_precision(model, precision)
    spec = image_spec(model)
    cfg = getattr(model.visual, "preprocess_cfg", None) or {}
    preprocess = ClipPreprocess(
        size=spec.size,
        mean=spec.mean,
        std=spec.std,
        interpolation=str(cfg.get("interpolation", "bicubic")),
    )

    def encode(batch: torch.Tensor) -> torch.Tensor:
        return encode_images(model, batch)

    return encode, preprocess, checksum, width, precision


def run(args: argparse.Namespace) -> int:
    from vadmon.research.extract import extract_videos, feature_origin
    from vadmon.research.videos import label_from_parent, label_mapping, plan_jobs

    if not 1 <= args.frames_per_snippet <= 16:
        raise VadmonError("--frames-per-snippet must be 1..16", "command line")
    if args.batch_size < 1:
        raise VadmonError("--batch-size must be ≥ 1", "command line")
    label_fn = label_mapping(args.labels) if args.labels else label_from_parent
    # inputs, labels and output names are checked before a model is loaded
    if not plan_jobs(args.inputs, label_fn):
        raise VadmonError("no video files found", ", ".join(map(str, args.inputs)))
    encode, preprocess, checksum, width, precision = _encoder(args)
    origin = feature_origin(
        clip_arch=args.clip_arch,
        clip_pretrained=args.clip_pretrained,
        clip_checksum=checksum,
        embed_dim=width,
        preprocess=preprocess,
        crop_mode=args.crop_mode,
        frames_per_snippet=args.frames_per_snippet,
        precision=precision,
    )
    summary = extract_videos(
        args.inputs,
        args.out,
        encode,
        preprocess=preprocess,
        crop_mode=args.crop_mode,
        frames_per_snippet=args.frames_per_snippet,
        batch_size=args.batch_size,
        label_fn=label_fn,
        progress=not args.no_progress,
        origin=origin,
    )
    print(summary.report())
    return 1 if summary.failed else 0
