"""``clip``: CLIP image-encode throughput per precision/layout, against fp32 in the same run.

Random weights (``create_clip(arch, None)``): speed does not depend on the weight values, and
the accuracy figure compares each variant with fp32 on the same weights and the same inputs.
``torch.compile`` runs in a child process under a time budget (compilation can take minutes
on a small CPU and cannot be interrupted in-process).
"""

from __future__ import annotations

import copy
import warnings
from collections.abc import Callable
from functools import partial

import torch
from torch import nn

from vadmon.bench import clip_compile
from vadmon.bench.core import (
    BenchOptions,
    BenchResult,
    Row,
    Timing,
    cosine,
    measure,
    setup_threads,
)
from vadmon.bench.inputs import natural_images
from vadmon.model.clip_factory import best_cpu_precision, create_clip, image_spec

BASELINE = "fp32"
Encoder = Callable[[torch.Tensor], torch.Tensor]


def settings(quick: bool) -> tuple[str, tuple[int, ...]]:
    return ("vadmon-tiny", (1, 4)) if quick else ("ViT-B-16", (1, 8, 32))


def _cast(visual: nn.Module, dtype: torch.dtype, channels_last: bool = False) -> Encoder:
    if channels_last:
        visual = visual.to(memory_format=torch.channels_last)

    def encode(x: torch.Tensor) -> torch.Tensor:
        x = x.to(dtype)
        if channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        return visual(x).float()

    return encode


def _autocast(visual: nn.Module) -> Encoder:
    def encode(x: torch.Tensor) -> torch.Tensor:
        with torch.autocast("cpu", dtype=torch.bfloat16):
            return visual(x).float()

    return encode


def _int8(visual: nn.Module) -> nn.Module:
    """Dynamic int8 on the Linear layers (attention's fused in-projection stays fp32)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch deprecates the quantized-tensor API it uses
        return torch.ao.quantization.quantize_dynamic(
            copy.deepcopy(visual), {nn.Linear}, dtype=torch.qint8
        )


def variants(visual: nn.Module) -> dict[str, Callable[[], Encoder]]:
    """Builders, so only one extra copy of the tower is alive at a time."""
    bf16 = torch.bfloat16
    return {
        "fp32": lambda: _cast(visual, torch.float32),
        "bf16": lambda: _cast(copy.deepcopy(visual).to(bf16), bf16),
        "bf16+channels_last": lambda: _cast(copy.deepcopy(visual).to(bf16), bf16, True),
        "fp32+channels_last": lambda: _cast(copy.deepcopy(visual), torch.float32, True),
        "autocast_bf16": partial(_autocast, visual),
        "int8_dynamic": lambda: _cast(_int8(visual), torch.float32),
    }


def _row(name: str, batch: int, timing: Timing, base_s: float, acc: dict[str, float]) -> Row:
    return Row(
        name=name,
        group=f"batch={batch}",
        value=batch / timing.median_s,
        unit="snippets/s",
        ratio=base_s / timing.median_s,
        baseline=BASELINE,
        params={"batch": batch},
        median_s=timing.median_s,
        repeats=timing.repeats,
        accuracy=acc,
    )


def run(opts: BenchOptions) -> BenchResult:
    threads = setup_threads(opts.threads)
    arch, batches = settings(opts.quick)
    batches = opts.batches or batches
    torch.manual_seed(0)
    model = create_clip(arch, None)
    images, source = natural_images(max(batches), image_spec(model))
    visual = model.visual
    rows: list[Row] = []
    refs: dict[int, torch.Tensor] = {}
    base: dict[int, float] = {}
    with torch.inference_mode():
        for name, build in variants(visual).items():
            encode = build()
            for batch in batches:
                x = images[:batch]
                timing = measure(partial(encode, x), opts.warmup, opts.repeats, opts.budget_s)
                out = encode(x)
                if name == BASELINE:
                    refs[batch], base[batch] = out, timing.median_s
                rows.append(_row(name, batch, timing, base[batch], cosine(out, refs[batch])))
            del encode
    rows += _compiled(arch, batches, images, refs, base, threads, opts)
    default = best_cpu_precision()
    notes = [
        f"{arch}, random weights, inputs: {source}; ratio = variant snippets/s ÷ fp32 "
        "snippets/s at the same batch size",
        f"best_cpu_precision() on this machine: {default}",
    ]
    return BenchResult("clip", "CLIP image encode", "snippets/s", rows, notes)


def _compiled(
    arch: str,
    batches: tuple[int, ...],
    images: torch.Tensor,
    refs: dict[int, torch.Tensor],
    base: dict[int, float],
    threads: int,
    opts: BenchOptions,
) -> list[Row]:
    name = "compile+bf16"
    if opts.quick:
        results, reason = {}, "skipped with --quick (compilation takes minutes on a small CPU)"
    else:
        results, reason = clip_compile.run_child(
            arch, batches, images, refs, threads, opts, timeout_s=opts.compile_budget_s
        )
    rows = []
    for batch in batches:
        res = results.get(batch)
        if res is None:
            rows.append(
                Row(name, f"batch={batch}", None, "snippets/s", None, BASELINE,
                    params={"batch": batch}, reason=reason or "no result")
            )  # fmt: skip
            continue
        timing = Timing(res["median_s"], res["min_s"], res["repeats"])
        acc = {"cos_min": res["cos_min"], "cos_mean": res["cos_mean"]}
        row = _row(name, batch, timing, base[batch], acc)
        row.params["compile_s"] = res["compile_s"]
        rows.append(row)
    return rows
