"""``vadmon bench [NAME ...]``: measure CLIP encode, the streaming step and scaling."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from vadmon.errors import VadmonError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "bench",
        help="run performance benchmarks",
        description="Run benchmarks; every figure is also given as a ratio against a baseline "
        "measured in the same run. An unknown NAME lists the available ones.",
    )
    p.add_argument("names", nargs="*", metavar="NAME", help="benchmarks to run (default: all)")
    p.add_argument("--quick", action="store_true", help="tiny sizes (seconds; for CI)")
    p.add_argument("--json", type=Path, help="also write the results to this JSON file")
    p.add_argument(
        "--markdown",
        type=Path,
        help="also write README-ready tables (with the CPU model and this command) here",
    )
    p.add_argument("--threads", type=int, default=0, help="torch threads (default: torch's)")
    p.add_argument("--warmup", type=int, default=1, help="untimed calls before measuring")
    p.add_argument("--repeats", type=int, default=5, help="timed calls (median reported)")
    p.add_argument(
        "--budget-s", type=float, default=20.0, help="time per measurement before cutting repeats"
    )
    p.add_argument(
        "--batches", type=_batches, help="clip batch sizes, comma-separated (default 1,8,32)"
    )
    p.add_argument("--compile-budget-s", type=float, default=240.0, help="torch.compile limit")
    p.add_argument(
        "--encoder",
        choices=("torch", "openvino", "auto"),
        help="monitor: model.encoder.backend of the runs (default: the config's default)",
    )
    p.add_argument(
        "--model-threads",
        type=int,
        help="monitor: model.threads of the runs (default: null, the probe's choice)",
    )
    p.add_argument(
        "--cameras",
        type=_batches,
        help="monitor: camera counts to run after 1, comma-separated (default: 1, 2, 4, … then bisect)",
    )
    p.set_defaults(handler=handle)


def _batches(text: str) -> tuple[int, ...]:
    """Comma-separated counts ≥ 1 (batch sizes, camera counts)."""
    try:
        sizes = tuple(int(part) for part in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected e.g. 1,8,32, got {text!r}") from None
    if not sizes or min(sizes) < 1:
        raise argparse.ArgumentTypeError("counts must be ≥ 1")
    return sizes


def handle(args: argparse.Namespace) -> int:
    # imported here: building the CLI parser must not load torch (every process builds it)
    from rich.console import Console

    from vadmon import bench
    from vadmon.atomic import atomic_write_text
    from vadmon.bench.core import BenchOptions, environment, setup_threads
    from vadmon.bench.report import document, markdown, print_results, write_json

    if args.threads < 0 or args.warmup < 0 or args.repeats < 1 or (args.model_threads or 1) < 1:
        raise VadmonError(
            "--threads/--warmup must be ≥ 0, --repeats and --model-threads ≥ 1",
            fix="check the numbers",
        )
    selected = bench.names(args.names)
    threads = setup_threads(args.threads)
    opts = BenchOptions(
        quick=args.quick,
        threads=threads,
        warmup=args.warmup,
        repeats=args.repeats,
        budget_s=args.budget_s,
        compile_budget_s=args.compile_budget_s,
        batches=args.batches,
        encoder=args.encoder,
        cameras=args.cameras,
        model_threads=args.model_threads,
    )
    env = environment(threads)
    console = Console()
    results = []
    for name in selected:
        console.print(f"[dim]running {name}…[/]")
        results.append(bench.run(name, opts))
    print_results(results, env, console)
    if args.json:
        settings = {**vars(opts), "names": selected}
        write_json(document(results, env, settings), args.json)
        console.print(f"[dim]results written to {args.json}[/]")
    if args.markdown:
        command = "vadmon bench " + " ".join(sys.argv[2:] if len(sys.argv) > 2 else selected)
        atomic_write_text(args.markdown, markdown(results, env, command) + "\n")
        console.print(f"[dim]markdown written to {args.markdown}[/]")
    return 0
