"""A tiny randomly initialised open_clip model for extraction tests (no weights, no network).

Stands in for ``vadmon.model.clip_factory.create_clip`` until that lands; swap the body of
``tiny_clip`` for ``create_clip("vadmon-tiny", None, "cpu", "fp32")`` then.

Also runnable as a module (``python -m tests.tiny_clip OUT VIDEO... [--hang-after N --marker F]``)
so a test can kill a real extraction process midway.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import torch

MODEL_NAME = "vadmon-test-tiny-clip"
CONFIG = {
    "embed_dim": 64,
    "quick_gelu": True,
    "vision_cfg": {"image_size": 32, "layers": 1, "width": 64, "patch_size": 16},
    "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 64, "heads": 1, "layers": 1},
}


def tiny_clip(seed: int = 0):
    """(encode, preprocess_cfg) of a tiny CLIP whose weights depend only on ``seed``."""
    import open_clip

    if MODEL_NAME not in open_clip.list_models():
        path = Path(tempfile.mkdtemp(prefix="vadmon-tiny-clip-")) / f"{MODEL_NAME}.json"
        path.write_text(json.dumps(CONFIG))
        open_clip.add_model_config(path)
    torch.manual_seed(seed)
    model = open_clip.create_model(MODEL_NAME).eval()

    def encode(batch: torch.Tensor) -> torch.Tensor:
        return model.encode_image(batch)

    return encode, open_clip.get_model_preprocess_cfg(model)


def main(argv: list[str] | None = None) -> int:
    from vadmon.crops import ClipPreprocess
    from vadmon.extract import extract_videos

    ap = argparse.ArgumentParser()
    ap.add_argument("out", type=Path)
    ap.add_argument("videos", type=Path, nargs="+")
    ap.add_argument("--crop-mode", default="10crop")
    ap.add_argument("--batch-size", type=int, default=10)
    ap.add_argument("--hang-after", type=int, default=0, help="block forever after N batches")
    ap.add_argument("--marker", type=Path, help="file touched when hanging starts")
    args = ap.parse_args(argv)
    encode, cfg = tiny_clip()
    calls = 0

    def maybe_hang(batch: torch.Tensor) -> torch.Tensor:
        nonlocal calls
        calls += 1
        if args.hang_after and calls > args.hang_after:
            args.marker.write_text("hanging")
            time.sleep(3600)
        return encode(batch)

    summary = extract_videos(
        args.videos,
        args.out,
        maybe_hang,
        preprocess=ClipPreprocess.from_cfg(cfg),
        crop_mode=args.crop_mode,
        batch_size=args.batch_size,
    )
    print(summary.report())
    return 0


if __name__ == "__main__":
    sys.exit(main())
