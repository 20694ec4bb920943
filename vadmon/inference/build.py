"""Config → a ready scorer: the model section decides VadCLIP or zero-shot, precision, window.

Kept apart from the loop so calibration (``vadmon calibrate --video``) and tests build exactly
the scorer the inference process runs.
"""

from __future__ import annotations

import os

from vadmon.inference.embedding import SnippetEncoder
from vadmon.inference.scores import VadClipStreamScorer, ZeroShotScorer

DEFAULT_CLASSES = ["normal", "fighting", "shooting", "riot", "abuse", "car accident", "explosion"]


def inference_threads(configured: int | None) -> int:
    """Oversubscribed cores are the monitor's worst enemy: with capture and alerts running, torch
    using every core makes inference slower, not faster (see ``model.threads``)."""
    return configured or max(1, (os.cpu_count() or 2) - 1)


def build_scorer(model_cfg, device: str) -> tuple[object, SnippetEncoder, str]:
    """Model section of the config → (scorer, encoder, "device/precision") ready to run.

    The precision is resolved once here (``resolve_precision``: a cached, measured probe for
    ``auto``) and the concrete value is passed to every part.
    """
    from vadmon.model import checkpoint
    from vadmon.model.clip_factory import create_clip, resolve_device, resolve_precision
    from vadmon.model.precision import adapter_dtype

    dev = resolve_device(device)
    # the tower runs on the server: keep the local model fp32 (its hash is the served one's)
    requested = "fp32" if model_cfg.encoder.backend == "triton" else model_cfg.precision
    if model_cfg.mode == "vadclip":
        ckpt = checkpoint.load(model_cfg.checkpoint)
        cfg = ckpt.config
        precision = resolve_precision(requested, dev, cfg.clip_arch, cfg.clip_model_cfg)
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
        return scorer, snippet_encoder(model.clipmodel, model_cfg.encoder), f"{dev}/{precision}"
    precision = resolve_precision(requested, dev, model_cfg.clip_arch)
    clip = create_clip(
        model_cfg.clip_arch, model_cfg.clip_pretrained, device=str(dev), precision=precision
    )
    names = list(model_cfg.class_names or DEFAULT_CLASSES)
    names += [c for c in model_cfg.extra_classes if c not in names]
    return (
        ZeroShotScorer(clip, names),
        snippet_encoder(clip, model_cfg.encoder),
        f"{dev}/{precision}",
    )


def snippet_encoder(clip, enc_cfg) -> SnippetEncoder:
    """The local tower, or (``model.encoder.backend: triton``) the served one, checked to be
    this CLIP's at connect (a wrong model or hash is a config error, one line)."""
    if enc_cfg.backend != "triton":
        return SnippetEncoder(clip)
    from vadmon.encoder.export import tower_dims, tower_hash
    from vadmon.encoder.triton_backend import TritonImageEncoder, TritonSettings
    from vadmon.inference.remote import PipelinedEncoder

    size, dim = tower_dims(clip)
    settings = TritonSettings(
        url=enc_cfg.url,
        model=enc_cfg.model,
        timeout_s=enc_cfg.timeout_s,
        max_in_flight=enc_cfg.max_in_flight,
        reconnect_initial_s=enc_cfg.reconnect_initial_s,
        reconnect_max_s=enc_cfg.reconnect_max_s,
        image_size=size,
        embed_dim=dim,
        tower_sha256=tower_hash(clip),
    )
    backend = TritonImageEncoder(settings)
    backend.connect()
    return PipelinedEncoder(clip, backend, enc_cfg.max_in_flight, enc_cfg.timeout_s + 5)
