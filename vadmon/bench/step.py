"""``step``: scoring one new snippet of a live window, against the published full forward.

The published inference calls ``model(visual, lengths)`` and so re-runs CLIP's text
transformer on every class prompt each time; a live monitor computes the prompts once. This
benchmark measures how much each step of that saves: cached text features through the model's
own forward, then ``StreamingStep`` (no per-length work, no per-item loops) in fp32 and bf16,
then smaller windows in the precision the monitor picks (``auto``: bf16 on CPUs with native
bf16, else fp32), which change the model's temporal context: reported, not a default.
"""

from __future__ import annotations

from functools import partial

import torch

from vadmon.bench.core import BenchOptions, BenchResult, Row, Timing, measure, setup_threads
from vadmon.model.clip_factory import resolve_precision
from vadmon.model.config import VadClipConfig, load_preset
from vadmon.model.precision import adapter_dtype
from vadmon.model.stream import StreamingStep
from vadmon.model.vadclip import VadCLIP, VadClipOutput, probabilities

BASELINE = "full forward (prompts re-encoded)"


def build_model(quick: bool) -> VadCLIP:
    """UCF-shaped VadCLIP on a random ViT-B-16 (``--quick``: on the tiny test CLIP)."""
    preset = load_preset("ucf")
    if quick:
        cfg: VadClipConfig = preset.model_config(
            clip_arch="vadmon-tiny", visual_width=64, visual_length=32
        )
    else:
        cfg = preset.model_config()
    torch.manual_seed(0)
    return VadCLIP(cfg).eval()


def feature_window(batch: int, length: int, width: int, seed: int = 0) -> torch.Tensor:
    """Slowly drifting features, like consecutive snippets of one scene."""
    gen = torch.Generator().manual_seed(seed)
    walk = torch.randn(batch, length, width, generator=gen).cumsum(1) / length**0.5
    return walk + torch.randn(batch, 1, width, generator=gen)


def auto_precision(model: VadCLIP) -> str:
    """The precision ``auto`` resolves to here. A measured probe: it may differ between runs
    of one CPU under load, so the rows record it rather than anyone predicting it."""
    cfg = model.config
    return resolve_precision("auto", "cpu", cfg.clip_arch, cfg.clip_model_cfg)


def deviation(out: VadClipOutput, ref: VadClipOutput) -> dict[str, float]:
    """Largest score difference, over the window and for the newest snippet."""
    p, r = probabilities(out), probabilities(ref)
    acc = {}
    for key in ("coarse", "fine"):
        diff = (p[key] - r[key]).abs()
        acc[f"max_abs_{key}"] = float(diff.max())
        acc[f"max_abs_{key}_newest"] = float(diff[..., -1].max())
    acc["max_abs_class_probs"] = float((p["class_probs"] - r["class_probs"]).abs().max())
    return acc


def _row(name: str, window: int, timing: Timing, base_s: float, **extra: object) -> Row:
    return Row(
        name=name,
        group=f"window={window}",
        value=timing.median_s * 1e3,
        unit="ms/step",
        ratio=base_s / timing.median_s,
        baseline=BASELINE,
        params={"window": window, **extra},
        median_s=timing.median_s,
        repeats=timing.repeats,
    )


def run(opts: BenchOptions) -> BenchResult:
    setup_threads(opts.threads)
    model = build_model(opts.quick)
    cfg = model.config
    n = cfg.visual_length
    window = feature_window(1, n, cfg.visual_width)
    lengths = torch.tensor([n])
    rows: list[Row] = []
    with torch.inference_mode():
        text = model.encode_prompts(cfg.class_names)
        ref = model(window, lengths, text_features=text)
        full = measure(lambda: model(window, lengths), opts.warmup, opts.repeats, opts.budget_s)
        base = full.median_s
        rows.append(_row(BASELINE, n, full, base, classes=cfg.num_classes))
        cached = measure(lambda: model(window, lengths, text_features=text), opts.warmup,
                         opts.repeats * 4, opts.budget_s)  # fmt: skip
        rows.append(_row("cached text features", n, cached, base))
    for dtype in (torch.float32, torch.bfloat16):
        step = StreamingStep(model, dtype=dtype, text_features=text)
        timing = measure(partial(step, window), opts.warmup, opts.repeats * 4, opts.budget_s)
        row = _row(f"StreamingStep {_name(dtype)}", n, timing, base, dtype=_name(dtype))
        row.accuracy = deviation(step(window), ref)
        rows.append(row)
    rows += _live_cycle(model, text, base, opts)
    rows += _smaller_windows(model, text, base, opts)
    notes = [
        f"UCF preset shape (visual_width {cfg.visual_width}, {cfg.num_classes} classes), "
        f"CLIP {cfg.clip_arch}, random weights; ratio = baseline ms ÷ variant ms",
        "accuracy: max |Δ probability| against the fp32 forward with cached text features",
        f"live cycle: the {cfg.attn_window} windows between two moves of the window start "
        f"({n - cfg.attn_window + 1}..{n} rows; the first recomputes everything), per step; "
        "block memo = the previous step's complete attention blocks reused (exact)",
        "smaller windows shorten the temporal context the global graph sees (not exact)",
        "precision int8 quantises only the CLIP image tower (see clip: int8_dynamic); its "
        "adapter step is the fp32 row",
    ]
    return BenchResult("step", "streaming step (one new snippet)", "ms/step", rows, notes)


def _live_cycle(model: VadCLIP, text: torch.Tensor, base: float, opts: BenchOptions) -> list[Row]:
    """What a camera's steps cost on average: one cycle of windows as ``SlidingWindow`` keeps
    them (the start moves once per ``attn_window`` snippets), with and without the memo."""
    cfg = model.config
    n, block = cfg.visual_length, cfg.attn_window
    feats = feature_window(1, n + block, cfg.visual_width)
    windows = [feats[:, block : n + 1 + k] for k in range(block)]
    with torch.inference_mode():
        full_ref = model(windows[-1], None, text_features=text)
    rows = []
    for dtype in (torch.float32, torch.bfloat16):
        step = StreamingStep(model, dtype=dtype, text_features=text)
        for memo_on in (False, True):
            state: dict[str, VadClipOutput] = {}

            def cycle(step: StreamingStep = step, memo_on: bool = memo_on, state=state) -> None:
                for window in windows:
                    last = state.get("out") if memo_on else None
                    state["out"] = step(window, last.memo if last is not None else None)

            timing = measure(cycle, opts.warmup, opts.repeats, opts.budget_s)
            per_step = Timing(timing.median_s / block, timing.min_s / block, timing.repeats)
            how = "block memo" if memo_on else "no memo"
            name = f"StreamingStep {_name(dtype)}, live cycle, {how}"
            row = _row(name, n, per_step, base, dtype=_name(dtype), memo=memo_on, cycle=block)
            row.accuracy = deviation(state["out"], full_ref)
            rows.append(row)
    return rows


def _smaller_windows(
    model: VadCLIP, text: torch.Tensor, base: float, opts: BenchOptions
) -> list[Row]:
    """Named by window, not by the precision ``auto`` resolved to: the full-window rows are
    already called "StreamingStep fp32"/"bf16", and a name must mean the same row on every CPU."""
    resolved = auto_precision(model)
    dtype = adapter_dtype(resolved)
    step = StreamingStep(model, dtype=dtype, text_features=text)
    full = model.config.visual_length
    rows = []
    for n in (full // 2, full // 4):
        window = feature_window(1, n, model.config.visual_width)
        timing = measure(partial(step, window), opts.warmup, opts.repeats * 4, opts.budget_s)
        name = f"StreamingStep auto, window {n}"
        rows.append(_row(name, n, timing, base, dtype=_name(dtype), resolved=resolved))
    return rows


def _name(dtype: torch.dtype) -> str:
    return {torch.float32: "fp32", torch.bfloat16: "bf16"}[dtype]
