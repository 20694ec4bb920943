"""``clip``: CLIP image-encode throughput per backend/precision/layout, against fp32 in the
same run, the variants interleaved round by round (a load spike from other processes hits all
alike). OpenVINO rows (``openvino_fp32/bf16/int8``, int8 by NNCF on frames not measured) are
built in memory through ``vadmon.encoder.openvino_backend``.

Random weights (``create_clip(arch, None)``): speed does not depend on the weight values, and
the accuracy figure compares each variant with fp32 on the same weights and the same inputs.
``torch.compile`` runs in a child process under a time budget (compilation can take minutes
on a small CPU and cannot be interrupted in-process).
"""

from __future__ import annotations

import copy
import statistics
import time
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
    setup_threads,
)
from vadmon.bench.inputs import natural_images
from vadmon.model.clip_factory import create_clip, image_spec, resolve_precision

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


def _openvino(visual: nn.Module, precision: str, calib: torch.Tensor, threads: int) -> Encoder:
    from vadmon.encoder import openvino_backend

    size = int(calib.shape[-1])
    return openvino_backend.in_memory(visual, size, precision, threads, calib).encode


def variants(
    visual: nn.Module, calib: torch.Tensor | None = None, threads: int = 1
) -> dict[str, Callable[[], Encoder]]:
    """Builders (each makes its own copy of the tower)."""
    bf16 = torch.bfloat16
    ov: dict[str, Callable[[], Encoder]] = {}
    if calib is not None and _openvino_available():
        ov = {f"openvino_{p}": partial(_openvino, visual, p, calib, threads)
              for p in ("fp32", "bf16", "int8")}  # fmt: skip
    return {
        "fp32": lambda: _cast(visual, torch.float32),
        "bf16": lambda: _cast(copy.deepcopy(visual).to(bf16), bf16),
        "bf16+channels_last": lambda: _cast(copy.deepcopy(visual).to(bf16), bf16, True),
        "fp32+channels_last": lambda: _cast(copy.deepcopy(visual), torch.float32, True),
        "autocast_bf16": partial(_autocast, visual),
        "int8_dynamic": lambda: _cast(_int8(visual), torch.float32),
        **ov,
    }


def _openvino_available() -> bool:
    from vadmon.encoder import openvino_backend

    return openvino_backend.available()


def _interleaved(encoders: dict[str, Encoder], x: torch.Tensor, opts: BenchOptions
                 ) -> tuple[dict[str, Timing], dict[str, torch.Tensor]]:  # fmt: skip
    """One warm-up each, then ``repeats`` rounds over all variants (fewer when slow)."""
    outs, first = {}, 0.0
    for name, encode in encoders.items():
        start = time.perf_counter()
        outs[name] = encode(x)
        first += time.perf_counter() - start
    rounds = max(2, min(opts.repeats, int(opts.budget_s * len(encoders) / max(first, 1e-9))))
    times: dict[str, list[float]] = {n: [] for n in encoders}
    for _ in range(rounds):
        for name, encode in encoders.items():
            start = time.perf_counter()
            encode(x)
            times[name].append(time.perf_counter() - start)
    timings = {n: Timing(statistics.median(t), min(t), len(t)) for n, t in times.items()}
    return timings, outs


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
    spec = image_spec(model)
    images, source = natural_images(max(batches) + 16, spec)
    images, calib = images[: max(batches)], images[max(batches) :]
    rows: list[Row] = []
    refs: dict[int, torch.Tensor] = {}
    base: dict[int, float] = {}
    with torch.inference_mode():
        encoders = {n: build() for n, build in variants(model.visual, calib, threads).items()}
        for batch in batches:
            x = images[:batch]
            timings, outs = _interleaved(encoders, x, opts)
            refs[batch], base[batch] = outs[BASELINE], timings[BASELINE].median_s
            for name, timing in timings.items():
                acc = cosine(outs[name], refs[batch])
                rows.append(_row(name, batch, timing, base[batch], acc))
        del encoders
    rows += _compiled(arch, batches, images, refs, base, threads, opts)
    default = resolve_precision("auto", "cpu", arch)
    notes = [
        f"{arch}, random weights, inputs: {source}; ratio = variant snippets/s ÷ fp32 "
        "snippets/s at the same batch size",
        f"precision auto (measured probe, cached) on this machine: {default}",
        "variants interleaved round by round; openvino_* = OpenVINO "
        f"(INFERENCE_NUM_THREADS={threads}), int8 by NNCF on 16 other frames",
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
