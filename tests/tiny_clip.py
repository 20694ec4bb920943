"""A tiny randomly initialised open_clip model for extraction tests (no weights, no network).


Also runnable as a module (``python -m tests.tiny_clip OUT VIDEO... [--hang-after N --marker F]``)
so a test can kill a real extraction process midway.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch


def tiny_clip():
    """(encode, preprocess_cfg) of ``vadmon-tiny`` (seeded random weights), built through the
    package's own factory, i.e. open_clip's model-config mechanism."""
    import open_clip

    from vadmon.model.clip_factory import create_clip

    model = create_clip("vadmon-tiny")

    def encode(batch: torch.Tensor) -> torch.Tensor:
        return model.encode_image(batch)

    return encode, open_clip.get_model_preprocess_cfg(model)


def main(argv: list[str] | None = None) -> int:
    from vadmon.model.crops import ClipPreprocess
    from vadmon.research.extract import extract_videos

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
