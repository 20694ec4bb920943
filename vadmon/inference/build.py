"""Config → a ready scorer: the model section decides VadCLIP or zero-shot, precision, window.

Kept apart from the loop so calibration (``vadmon calibrate --video``) and tests build exactly
the scorer the inference process runs.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from vadmon.config.models import ModelConfig
from vadmon.inference.embedding import SnippetEncoder
from vadmon.inference.scores import Scorer, VadClipStreamScorer, ZeroShotScorer

DEFAULT_CLASSES = ["normal", "fighting", "shooting", "riot", "abuse", "car accident", "explosion"]


def inference_threads(configured: int | None) -> int:
    """Oversubscribed cores are the monitor's worst enemy: with capture and alerts running, torch
    using every core makes inference slower, not faster (see ``model.threads``)."""
    return configured or max(1, (os.cpu_count() or 2) - 1)


@dataclass(frozen=True)
class BuiltScorer:
    """A scorer ready to run, the encoder that feeds it, and where/how it runs."""

    scorer: Scorer
    encoder: SnippetEncoder
    runtime: str  # "device/precision", e.g. "cpu/bf16" (the dashboard shows it)


def build_scorer(model_cfg: ModelConfig, device: str) -> BuiltScorer:
    """Model section of the config → the scorer, its encoder and "device/precision".

    The precision is resolved once here (``resolve_precision``: a cached, measured probe for
    ``auto``) and the concrete value is passed to every part.
    """
    from vadmon.model import checkpoint
    from vadmon.model.clip_factory import create_clip, resolve_device, resolve_precision
    from vadmon.model.precision import adapter_dtype

    dev = resolve_device(device)
    if model_cfg.mode == "vadclip":
        ckpt = checkpoint.load(model_cfg.checkpoint)
        cfg = ckpt.config
        precision = resolve_precision(model_cfg.precision, dev, cfg.clip_arch, cfg.clip_model_cfg)
        names = list(model_cfg.class_names or cfg.class_names)
        names += [c for c in model_cfg.extra_classes if c not in names]
        model = ckpt.build(str(dev), precision)
        scorer = VadClipStreamScorer(
            model,
            names,
            model_cfg.window,
            dtype=adapter_dtype(precision),
            lookahead=model_cfg.lookahead,
            max_gap=model_cfg.max_gap,
        )
        return BuiltScorer(scorer, SnippetEncoder(model.clipmodel), f"{dev}/{precision}")
    precision = resolve_precision(model_cfg.precision, dev, model_cfg.clip_arch)
    clip = create_clip(
        model_cfg.clip_arch, model_cfg.clip_pretrained, device=str(dev), precision=precision
    )
    names = list(model_cfg.class_names or DEFAULT_CLASSES)
    names += [c for c in model_cfg.extra_classes if c not in names]
    return BuiltScorer(ZeroShotScorer(clip, names), SnippetEncoder(clip), f"{dev}/{precision}")
