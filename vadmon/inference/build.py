"""Config → a ready scorer: the model section decides VadCLIP or zero-shot, precision, window,
and which backend runs the image tower (``model.encoder``, ``vadmon.encoder``).

Kept apart from the loop so calibration (``vadmon calibrate --video``) and tests build exactly
the scorer the inference process runs.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch

from vadmon.config.models import ModelConfig
from vadmon.inference.embedding import SnippetEncoder
from vadmon.inference.provisional import EarlyStreamScorer
from vadmon.inference.scores import Scorer, ZeroShotScorer

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
    runtime: str  # "device/precision", e.g. "cpu/bf16" or "cpu/ov-int8" (the dashboard shows it)


def build_scorer(
    model_cfg: ModelConfig, device: str, cameras: list[str | int] | None = None
) -> BuiltScorer:
    """Model section of the config → the scorer, its encoder and "device/precision".

    Backend and precision are resolved once here (``encoder_choice``: a cached, measured probe
    for ``auto``) and the concrete values are passed to every part. An OpenVINO tower is built
    from the fp32 torch tower (the adapter stays fp32) and kept only if it passes the fidelity
    gate on frames of ``cameras`` (or the configured calibration set).
    """
    from vadmon.model import checkpoint
    from vadmon.model.clip_factory import create_clip, resolve_device
    from vadmon.model.precision import adapter_dtype

    dev = resolve_device(device)
    ckpt = checkpoint.load(model_cfg.checkpoint) if model_cfg.mode == "vadclip" else None
    arch = ckpt.config.clip_arch if ckpt else model_cfg.clip_arch
    choice = encoder_choice(model_cfg, dev, arch, ckpt.config.clip_model_cfg if ckpt else None)
    tower = "fp32" if choice.backend == "openvino" else choice.precision
    if ckpt is not None:
        names = list(model_cfg.class_names or ckpt.config.class_names)
        names += [c for c in model_cfg.extra_classes if c not in names]
        model = ckpt.build(str(dev), tower)
        scorer = EarlyStreamScorer(  # the final scores of VadClipStreamScorer, and provisional
            model,
            names,
            model_cfg.window,
            dtype=adapter_dtype(tower),
            lookahead=model_cfg.lookahead,
            max_gap=model_cfg.max_gap,
        )
        clip = model.clipmodel
        probs = _vadclip_probs(model, names)
    else:
        clip = create_clip(
            model_cfg.clip_arch, model_cfg.clip_pretrained, device=str(dev), precision=tower
        )
        names = list(model_cfg.class_names or DEFAULT_CLASSES)
        names += [c for c in model_cfg.extra_classes if c not in names]
        scorer = ZeroShotScorer(clip, names)
        probs = _zeroshot_probs(scorer)
    if choice.backend == "triton":
        return BuiltScorer(
            scorer, triton_encoder(clip, model_cfg.encoder), f"{dev}/{choice.precision}"
        )
    encoder = SnippetEncoder(clip)
    if choice.backend != "openvino":
        return BuiltScorer(scorer, encoder, f"{dev}/{choice.precision}")
    from vadmon.encoder.select import build_openvino

    selection = build_openvino(
        clip, choice.precision, model_cfg.encoder, encoder.prepare, list(cameras or []),
        probs, torch.get_num_threads(),
    )  # fmt: skip
    encoder.image_encoder = selection.encoder
    encoder.selection = selection
    runtime = f"{dev}/fp32" if selection.fallback else f"{dev}/ov-{choice.precision}"
    return BuiltScorer(scorer, encoder, runtime)


def encoder_choice(model_cfg, dev: torch.device, arch: str, clip_model_cfg):
    """(backend, precision, threads) for this config on this device; sets the probe's threads
    when ``model.threads`` is null (the probe measured 1 and 2 threads)."""
    from vadmon.encoder.probe import Choice, resolve
    from vadmon.model.clip_factory import _cfg_digest, probe_tower, resolve_precision

    backend = model_cfg.encoder.backend
    if backend == "triton":  # the tower runs on the server: the local one stays fp32 (its hash)
        return Choice("triton", "fp32", None)
    if dev.type != "cpu" or backend == "torch":
        precision = resolve_precision(model_cfg.precision, dev, arch, clip_model_cfg)
        return Choice("torch" if backend == "auto" else backend, precision, None)
    if model_cfg.precision == "fp16":
        return Choice("torch", "fp16", None)
    key = arch if clip_model_cfg is None else f"{arch}:{_cfg_digest(clip_model_cfg)}"
    choice = resolve(
        backend, model_cfg.precision, key, lambda: probe_tower(arch, clip_model_cfg),
        model_cfg.threads,
    )  # fmt: skip
    if model_cfg.threads is None and choice.threads:
        torch.set_num_threads(choice.threads)
    return choice


def _vadclip_probs(model, names: list[str]):
    """Embeddings of consecutive held-out frames → VadCLIP coarse + class probabilities."""
    from vadmon.model.predict import score_features

    def probs(emb: torch.Tensor) -> torch.Tensor:
        out = score_features(model, emb.float().numpy(), class_names=names)
        both = [torch.from_numpy(out["coarse"])[:, None], torch.from_numpy(out["class_probs"])]
        return torch.cat(both, dim=1).float()

    return probs


def _zeroshot_probs(scorer: ZeroShotScorer):
    def probs(emb: torch.Tensor) -> torch.Tensor:
        scores = scorer.score(["gate"] * len(emb), emb)
        return torch.tensor([s.class_probs for s in scores])

    return probs


def triton_encoder(clip, enc_cfg) -> SnippetEncoder:
    """The served tower (``model.encoder.backend: triton``), checked to be this CLIP's at
    connect (a wrong model or hash is a config error, one line)."""
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
