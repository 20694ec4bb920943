"""``vadmon eval``: metrics of a checkpoint on a test list (published protocol), report, plots."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from vadmon.commands import preset_help
from vadmon.errors import VadmonError
from vadmon.model.config import list_presets


def add_gt_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("ground truth (at most one)")
    g.add_argument("--gt-temporal", type=Path, help="UCF Temporal_Anomaly_Annotation.txt")
    g.add_argument("--gt-segments", type=Path, help="published gt_segment*.npy (list order)")
    g.add_argument("--gt-labels", type=Path, help="published gt_label*.npy (with --gt-segments)")
    g.add_argument("--gt-csv", type=Path, help="segment CSV video,start_frame,end_frame,label")


def gt_from_args(args: argparse.Namespace):
    from vadmon.research.evaluate import GroundTruthSource

    gt = GroundTruthSource(args.gt_temporal, args.gt_segments, args.gt_labels, args.gt_csv)
    gt.kind()  # conflicting options fail before any model is loaded
    for path in (gt.temporal, gt.segments_npy, gt.labels_npy, gt.csv):
        if path is not None and not path.is_file():
            raise VadmonError("ground-truth file not found", str(path), "check the path")
    return gt


def add_causal_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("causal replay (docs/CAUSAL_EVAL.md)")
    g.add_argument(
        "--causal",
        action="store_true",
        help="also replay every test video through the monitor's streaming scorer and report "
        "frame AUC/AP, mAP@IoU and time to detect per lookahead next to offline",
    )
    g.add_argument(
        "--lookahead",
        default="0,1,2,4,8",
        help="comma-separated lookaheads in snippets (default 0,1,2,4,8)",
    )
    g.add_argument(
        "--config",
        type=Path,
        help="monitor config: model.window/max_gap and a camera's alert rules (default: the "
        "schema's defaults)",
    )
    g.add_argument("--camera", help="the config camera whose alert rules apply (default: first)")
    g.add_argument(
        "--fps", type=float, default=25.0, help="frame rate of the test videos (default 25)"
    )


def parse_lookaheads(text: str) -> list[int]:
    try:
        values = [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        values = []
    if not values or min(values) < 0:
        raise VadmonError(
            f"--lookahead {text!r} is not a list of snippet counts ≥ 0", "command line",
            "e.g. --lookahead 0,1,2,4,8",
        )  # fmt: skip
    return sorted(set(values))


def run_causal(args: argparse.Namespace, report) -> None:
    """The causal table, printed and added to the report's JSON under ``causal``."""
    from vadmon.model import checkpoint as ckpt_mod
    from vadmon.research.causal import causal_rows, setup_from, table

    setup = setup_from(args.config, args.camera, args.fps)
    model = ckpt_mod.load(args.checkpoint).build(args.device)
    rows = causal_rows(model, report, setup, parse_lookaheads(args.lookahead))
    for line in table(rows, setup):
        print(line)
    report.diagnostics["causal"] = {
        "source": setup.source, "fps": setup.fps, "snippet_s": setup.snippet_s,
        "threshold": setup.rules.threshold, "rows": [r.to_dict() for r in rows],
    }  # fmt: skip


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "eval",
        help="evaluate a checkpoint on a test list (AUC, AP, mAP@IoU, plots)",
        description="Scores every video of the test list with the published protocol and "
        "prints frame AUC/AP for both branches, detection mAP@IoU 0.1-0.5 when the ground truth "
        "has class labels, and the video-level AUC against the list labels.",
    )
    p.add_argument("checkpoint", type=Path, help="vadmon checkpoint (train or import-checkpoint)")
    p.add_argument("--test-list", type=Path, required=True, help="list CSV path,label")
    p.add_argument(
        "--preset",
        choices=list_presets(),
        help=preset_help("label map, used when the checkpoint has none"),
    )
    p.add_argument(
        "--crop",
        type=int,
        help="crop to score (default: the preset's test crop, else the checkpoint's validation "
        "crop); a video without it is an error",
    )
    add_gt_args(p)
    p.add_argument(
        "--probe",
        action="store_true",
        help="also fit a supervised linear probe on the same features with the frame labels "
        "(cross-validated by video) and report its AUC beside the model's",
    )
    add_causal_args(p)
    p.add_argument("--report", type=Path, help="write the JSON report here")
    p.add_argument(
        "--scores", type=Path, help="directory for per-snippet scores (scores.csv, scores.npz)"
    )
    p.add_argument("--plots", type=Path, help="directory for score-timeline PNGs")
    p.add_argument("--plot-videos", help="comma-separated video names to plot")
    p.add_argument(
        "--plot-top",
        type=int,
        help="plot the N videos with the largest errors: mean |C-Branch score − event fraction| "
        "per snippet, or |top-k mean score − video label| without frame ground truth (default 5)",
    )
    p.add_argument("--device", default="auto", help="auto (CUDA when present), cpu, cuda[:N]")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from vadmon.research.evaluate import evaluate_checkpoint, summary_lines, write_report

    if not args.test_list.is_file():
        raise VadmonError("test list not found", str(args.test_list), "check --test-list")
    if (args.plot_videos or args.plot_top) and not args.plots:
        raise VadmonError("--plot-videos/--plot-top need --plots DIR", "command line")
    gt = gt_from_args(args)
    if args.causal:
        parse_lookaheads(args.lookahead)  # a typo fails before any scoring
        if gt.kind() is None:
            raise VadmonError("--causal needs frame ground truth", "command line",
                              "add --gt-csv/--gt-temporal")  # fmt: skip
        if args.config is not None and not args.config.is_file():
            raise VadmonError("config not found", str(args.config), "check --config")
    if args.probe and gt.kind() is None:
        raise VadmonError(
            "--probe needs frame ground truth", "command line", "add --gt-csv/--gt-temporal"
        )
    report = evaluate_checkpoint(
        args.checkpoint,
        args.test_list,
        gt,
        preset=args.preset,
        crop=args.crop,
        device=args.device,
        progress=not args.no_progress and sys.stderr.isatty(),
        probe=args.probe,
    )
    for line in summary_lines(report):
        print(line)
    if args.causal:
        run_causal(args, report)
    if args.report:
        write_report(report, args.report)
        print(f"report → {args.report}")
    if args.scores:
        from vadmon.research.eval_export import write_scores

        csv_path, npz_path = write_scores(report, args.scores)
        print(f"per-snippet scores → {csv_path}, {npz_path}")
    if args.plots:
        from vadmon.research.eval_plots import plot_report

        names = [n.strip() for n in (args.plot_videos or "").split(",") if n.strip()]
        top = args.plot_top if args.plot_top is not None else (0 if names else 5)
        pngs, rule = plot_report(report, args.plots, names or None, top)
        print(f"{len(pngs)} plots → {args.plots} ({rule})")
    return 0
