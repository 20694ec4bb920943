"""``vadmon train``: weakly supervised VadCLIP training from list CSVs (resumable)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from vadmon.commands import preset_help
from vadmon.commands.eval import add_gt_args, gt_from_args
from vadmon.commands.extract import add_clip_args
from vadmon.errors import VadmonError
from vadmon.model.config import list_presets


def _ints(text: str) -> list[int]:
    try:
        return [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated integers, got {text!r}"
        ) from None


def parse_classes(text: str) -> list[tuple[str, str]]:
    """``Normal=normal,Flash=red flash`` → [(list label, prompt)]; ``KEY`` alone = its own prompt."""
    out = []
    for part in text.split(","):
        if not part.strip():
            continue
        key, _, prompt = part.partition("=")
        out.append((key.strip(), (prompt or key).strip()))
    if len(out) < 2 or any(not k or not p for k, p in out):
        raise argparse.ArgumentTypeError("--classes needs KEY[=PROMPT],... with normal first")
    return out


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "train",
        help="train VadCLIP on extracted features (video-level labels)",
        description="Hyper-parameters default to the preset's published values. The best epoch "
        "is chosen on a validation split of the training list held out by video (never on the "
        "test list). State is saved every epoch in --work-dir; --resume continues exactly.",
    )
    p.add_argument("--train-list", type=Path, required=True, help="list CSV path,label")
    p.add_argument(
        "--preset",
        choices=list_presets(),
        default="ucf",
        help=preset_help("published hyper-parameters, class names and label map (default ucf)"),
    )
    p.add_argument("-o", "--output", type=Path, required=True, help="final checkpoint (.pt)")
    p.add_argument("--work-dir", type=Path, help="state/history dir (default runs/<output name>)")
    src = p.add_argument_group("model source")
    src.add_argument("--checkpoint-init", type=Path, help="start from a vadmon checkpoint")
    add_clip_args(src, None, None)  # default: the tower named in the features' sidecar
    src.add_argument("--classes", type=parse_classes, help="KEY[=PROMPT],... (normal first)")
    src.add_argument("--visual-length", type=int, help="override the preset's L")
    src.add_argument("--attn-window", type=int, help="override the local attention window")
    hp = p.add_argument_group("hyper-parameters (default: preset)")
    hp.add_argument("--epochs", type=int)
    hp.add_argument("--lr", type=float)
    hp.add_argument("--milestones", type=_ints, help="epochs where lr ×= gamma, e.g. 4,8")
    hp.add_argument("--gamma", type=float)
    hp.add_argument("--seed", type=int)
    hp.add_argument("--batch-size", type=int, help="one shuffled loader (XD style)")
    hp.add_argument("--batch-normal", type=int, help="normal samples per paired batch (UCF)")
    hp.add_argument("--batch-anomaly", type=int, help="anomalous samples per paired batch (UCF)")
    hp.add_argument("--text-loss-weight", type=float)
    hp.add_argument("--weight-decay", type=float, default=0.01)
    hp.add_argument(
        "--min-steps",
        type=int,
        default=8,
        help="shrink batches so an epoch has at least this many steps (0 = keep sizes)",
    )
    val = p.add_argument_group("validation and test")
    val.add_argument("--val-fraction", type=float, default=0.1, help="held-out videos (0 = none)")
    val.add_argument(
        "--val-crop", type=int, help="crop scored for validation/test (default: preset)"
    )
    val.add_argument("--test-list", type=Path, help="evaluated once, after training")
    add_gt_args(p)
    run_g = p.add_argument_group("run")
    run_g.add_argument("--device", default="auto", help="cpu, cuda, cuda:N or auto")
    run_g.add_argument(
        "--threads", type=int, help="CPU threads for training (default: usable cores − 1)"
    )
    run_g.add_argument("--resume", action="store_true", help="continue the run in --work-dir")
    run_g.add_argument("--stop-after", type=int, help="stop after this epoch (resume later)")
    run_g.add_argument("--no-progress", action="store_true")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from vadmon.research.train import train
    from vadmon.research.train_options import HYPER_KEYS, TrainOptions

    if not args.train_list.is_file():
        raise VadmonError("train list not found", str(args.train_list), "check --train-list")
    if args.test_list is not None and not args.test_list.is_file():
        raise VadmonError("test list not found", str(args.test_list), "check --test-list")
    gt = gt_from_args(args)
    work_dir = args.work_dir or Path("runs") / args.output.stem
    opts = TrainOptions(
        train_list=args.train_list,
        output=args.output,
        work_dir=work_dir,
        preset=args.preset,
        checkpoint_init=args.checkpoint_init,
        clip_arch=args.clip_arch,
        clip_pretrained=args.clip_pretrained,
        classes=args.classes,
        visual_length=args.visual_length,
        attn_window=args.attn_window,
        overrides={k: getattr(args, k) for k in HYPER_KEYS},
        weight_decay=args.weight_decay,
        val_fraction=args.val_fraction,
        val_crop=args.val_crop,
        test_list=args.test_list,
        test_gt=gt,
        device=args.device,
        threads=args.threads,
        min_steps=args.min_steps,
        resume=args.resume,
        stop_after=args.stop_after,
        progress=not args.no_progress and sys.stderr.isatty(),
        log=lambda line: print(line, flush=True),
    )
    result = train(opts)
    return 0 if result.finished or args.stop_after is not None else 1
