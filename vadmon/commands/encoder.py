"""``vadmon encoder export DIR --config X``: the config's CLIP image tower as a Triton model
repository (``vadmon.encoder.export``)."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("encoder", help="serve the CLIP image tower elsewhere (Triton)")
    sub = parser.add_subparsers(dest="encoder_command", required=True)
    exp = sub.add_parser(
        "export", help="write a Triton model repository (ONNX + config.pbtxt) for the tower"
    )
    exp.add_argument("dir", type=Path, help="model repository directory (created)")
    exp.add_argument("--config", type=Path, required=True, help="monitor config (its model)")
    exp.add_argument(
        "--cpu",
        action="store_true",
        help="instance_group KIND_CPU and no TensorRT stanza (a server without GPUs)",
    )
    exp.set_defaults(handler=run_export)


def _clip_of(model_cfg):
    """The fp32 CLIP the monitor would load: the checkpoint's, or the zero-shot weights."""
    from vadmon.model import checkpoint
    from vadmon.model.clip_factory import create_clip

    if model_cfg.mode == "vadclip":
        return checkpoint.load(model_cfg.checkpoint).build("cpu", "fp32").clipmodel
    return create_clip(model_cfg.clip_arch, model_cfg.clip_pretrained, precision="fp32")


def run_export(args: argparse.Namespace) -> int:
    from vadmon.config import load_config
    from vadmon.encoder.export import ExportOptions, export_repository

    cfg = load_config(args.config)
    enc = cfg.model.encoder
    opts = ExportOptions(
        name=enc.model,
        max_batch_size=enc.max_batch_size,
        preferred_batch_sizes=tuple(enc.preferred_batch_sizes),
        max_queue_delay_us=enc.max_queue_delay_us,
        instances=enc.instances,
        gpu=not args.cpu,
    )
    entry = export_repository(_clip_of(cfg.model), args.dir, opts)
    print(f"model repository entry: {entry}  (tritonserver --model-repository {args.dir})")
    return 0
