"""``scaling``: streaming-step cost per snippet vs window length and vs number of cameras.

Uses the monitor's step (``StreamingStep`` in the adapter dtype ``precision: auto`` resolves to). Cameras: B windows
batched into one forward vs B separate forwards; the per-snippet figure divides by B.
"""

from __future__ import annotations

from functools import partial

import torch

from vadmon.bench.core import BenchOptions, BenchResult, Row, Timing, measure, setup_threads
from vadmon.bench.step import _name, auto_precision, build_model, feature_window
from vadmon.model.precision import adapter_dtype
from vadmon.model.stream import StreamingStep


def settings(quick: bool, full: int) -> tuple[tuple[int, ...], tuple[int, ...]]:
    if quick:
        return (full // 4, full // 2, full), (1, 2, 4)
    return (64, 128, 192, 256), (1, 2, 4, 8, 16)


def _row(name: str, group: str, timing: Timing, per: int, base: float, **params: object) -> Row:
    cost = timing.median_s / per
    return Row(
        name=name,
        group=group,
        value=cost * 1e3,
        unit="ms/snippet",
        ratio=base / cost,
        baseline=params.pop("baseline"),  # type: ignore[arg-type]
        params=params,
        median_s=timing.median_s,
        repeats=timing.repeats,
    )


def run(opts: BenchOptions) -> BenchResult:
    setup_threads(opts.threads)
    model = build_model(opts.quick)
    full, width = model.config.visual_length, model.config.visual_width
    lengths, cameras = settings(opts.quick, full)
    resolved = auto_precision(model)
    dtype = adapter_dtype(resolved)
    step = StreamingStep(model, dtype=dtype)
    rows: list[Row] = []
    timings = {}
    for n in lengths:
        window = feature_window(1, n, width)
        timings[n] = measure(partial(step, window), opts.warmup, opts.repeats * 2, opts.budget_s)
    base_name = f"window {full}"
    for n in lengths:
        rows.append(_row(f"window {n}", "window", timings[n], 1, timings[full].median_s,
                         baseline=base_name, window=n))  # fmt: skip
    rows += _cameras(step, cameras, full, width, opts)
    notes = [
        f"StreamingStep {_name(dtype)} (precision auto → {resolved}), CLIP embeddings precomputed",
        "window: ratio = ms/snippet at the full window ÷ ms/snippet at this window",
        "cameras: ratio = ms/snippet of 1 camera ÷ ms/snippet here (>1: cheaper per camera)",
    ]
    return BenchResult("scaling", "cost per snippet", "ms/snippet", rows, notes)


def _cameras(
    step: StreamingStep, cameras: tuple[int, ...], n: int, width: int, opts: BenchOptions
) -> list[Row]:
    windows = feature_window(max(cameras), n, width)
    one = measure(partial(step, windows[:1]), opts.warmup, opts.repeats * 2, opts.budget_s)
    base = one.median_s
    rows = [_row("1 camera", "cameras", one, 1, base, baseline="1 camera", cameras=1, window=n)]
    for b in cameras:
        if b == 1:
            continue
        batch = windows[:b]
        singles = [windows[i : i + 1] for i in range(b)]

        def separate(singles: list[torch.Tensor] = singles) -> None:
            for w in singles:
                step(w)

        t_sep = measure(separate, opts.warmup, opts.repeats, opts.budget_s)
        t_bat = measure(partial(step, batch), opts.warmup, opts.repeats, opts.budget_s)
        for name, timing in (("separate", t_sep), ("batched", t_bat)):
            rows.append(_row(f"{b} cameras {name}", "cameras", timing, b, base,
                             baseline="1 camera", cameras=b, window=n, mode=name))  # fmt: skip
    return rows
