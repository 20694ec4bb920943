"""Checkpoints: importing the published format and vadmon's self-describing one.

A vadmon checkpoint is a plain dict (``format``, ``version``, ``config``, ``label_map``,
``state_dict``, ``meta``) of tensors and JSON-like values, so ``torch.load(weights_only=True)``
reads it with no code execution. It carries the whole CLIP, so the published models run with no
other download.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from vadmon.atomic import atomic_path
from vadmon.errors import VadmonError
from vadmon.model.clip_factory import (
    clip_config_from_openai_state_dict,
    create_clip,
    resolve_device,
    resolve_precision,
    set_image_precision,
)
from vadmon.model.config import VadClipConfig
from vadmon.model.vadclip import VadCLIP

FORMAT = "vadmon-checkpoint"
VERSION = 1
CLIP_PREFIX = "clipmodel."

# Keys every published checkpoint has (beyond per-layer ones checked by shape).
_REQUIRED = (
    "frame_position_embeddings.weight",
    "text_prompt_embeddings.weight",
    "gc1.weight",
    "gc2.weight",
    "gc3.weight",
    "gc4.weight",
    "linear.weight",
    "classifier.weight",
    "mlp1.c_fc.weight",
    "mlp2.c_fc.weight",
    "temporal.resblocks.0.attn.in_proj_weight",
    "clipmodel.visual.proj",
    "clipmodel.visual.conv1.weight",
    "clipmodel.visual.positional_embedding",
    "clipmodel.token_embedding.weight",
    "clipmodel.positional_embedding",
    "clipmodel.ln_final.weight",
    "clipmodel.text_projection",
)


@dataclass
class Checkpoint:
    config: VadClipConfig
    state_dict: dict[str, torch.Tensor]
    label_map: dict[str, str] = field(default_factory=dict)
    meta: dict[str, Any] = field(default_factory=dict)

    def build(self, device: str = "cpu", precision: str = "fp32") -> VadCLIP:
        """Instantiate the model with these weights on ``device`` (image tower in ``precision``)."""
        clip = create_clip(self.config.clip_arch, None, model_cfg=self.config.clip_model_cfg)
        model = VadCLIP(self.config, clip)
        _load_strict(model, self.state_dict, "checkpoint")
        dev = resolve_device(device)
        model = model.to(dev).eval()
        cfg = self.config
        precision = resolve_precision(precision, dev, cfg.clip_arch, cfg.clip_model_cfg)
        set_image_precision(model.clipmodel, precision)
        return model


def _load_strict(model: torch.nn.Module, sd: dict[str, torch.Tensor], where: str) -> None:
    own = model.state_dict()
    for key, value in own.items():
        if key not in sd:
            raise VadmonError(f"checkpoint is missing key {key!r}", where=where)
        if tuple(sd[key].shape) != tuple(value.shape):
            raise VadmonError(
                f"checkpoint key {key!r} has shape {tuple(sd[key].shape)}, model expects "
                f"{tuple(value.shape)}",
                where=where,
                fix="the checkpoint was made for a different model size or preset",
            )
    extra = sorted(set(sd) - set(own))
    if extra:
        raise VadmonError(f"checkpoint has unexpected key {extra[0]!r}", where=where)
    model.load_state_dict(sd, strict=True)


def _torch_load(path: Path) -> Any:
    if not path.is_file():
        raise VadmonError(f"checkpoint file not found: {path}", fix="check the path")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # truncated zip, pickle with code, random bytes ...
        reason = str(exc).splitlines()[0][:160] if str(exc) else type(exc).__name__
        raise VadmonError(
            f"cannot read checkpoint ({reason})",
            where=str(path),
            fix="the file is truncated, corrupt, or not a PyTorch checkpoint; download it again",
        ) from None


def _as_state_dict(obj: Any, path: Path) -> dict[str, torch.Tensor]:
    if isinstance(obj, dict) and "state_dict" in obj and isinstance(obj["state_dict"], dict):
        obj = obj["state_dict"]
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise VadmonError(
            "checkpoint is not a state_dict of tensors",
            where=str(path),
            fix="pass the published model_ucf.pth / model_xd.pth",
        )
    return obj


def import_published(
    path: Path, config: VadClipConfig, label_map: dict[str, str] | None = None
) -> Checkpoint:
    """Convert a published VadCLIP ``state_dict`` (with ``clipmodel.*``) into a ``Checkpoint``.

    Shapes that the checkpoint determines (widths, lengths, layer counts, the CLIP tower) are
    read from it; everything else (heads, window, prompts, class names) comes from ``config``.
    """
    sd = _as_state_dict(_torch_load(path), path)
    for key in _REQUIRED:
        if key not in sd:
            raise VadmonError(
                f"not a published VadCLIP checkpoint: missing key {key!r}",
                where=str(path),
                fix="pass the published model_ucf.pth / model_xd.pth",
            )
    clip_sd = {k[len(CLIP_PREFIX) :]: v for k, v in sd.items() if k.startswith(CLIP_PREFIX)}
    try:
        clip_cfg = clip_config_from_openai_state_dict(clip_sd)
    except (KeyError, IndexError) as exc:
        raise VadmonError(f"CLIP weights incomplete: missing {exc}", where=str(path)) from None
    length, width = sd["frame_position_embeddings.weight"].shape
    layers = len({k.split(".")[2] for k in sd if k.startswith("temporal.resblocks.")})
    for name, found in (("visual_layers", layers), ("visual_length", int(length))):
        expected = getattr(config, name)
        if found != expected:
            raise VadmonError(
                f"checkpoint has {name}={found} but the preset expects {expected}",
                where=str(path),
                fix="this checkpoint belongs to another preset/model: check --preset",
            )
    cfg = config.replace(visual_width=int(width), clip_model_cfg=clip_cfg)
    if cfg.attn_window > cfg.visual_length:
        cfg = cfg.replace(attn_window=cfg.visual_length)
    _verify_loadable(cfg, sd, path)
    meta = {"source": path.name, "imported_from": "published-vadclip"}
    return Checkpoint(cfg, {k: v.float() for k, v in sd.items()}, dict(label_map or {}), meta)


def _verify_loadable(cfg: VadClipConfig, sd: dict[str, torch.Tensor], path: Path) -> None:
    clip = create_clip(cfg.clip_arch, None, model_cfg=cfg.clip_model_cfg)
    model = VadCLIP(cfg, clip)
    _load_strict(model, sd, str(path))


def save(ckpt: Checkpoint, path: Path) -> None:
    """Atomic write (temp file + rename): an interrupted save never leaves a broken file."""
    payload = {
        "format": FORMAT,
        "version": VERSION,
        "config": ckpt.config.to_dict(),
        "label_map": dict(ckpt.label_map),
        "meta": dict(ckpt.meta),
        "state_dict": {k: v.detach().cpu().contiguous() for k, v in ckpt.state_dict.items()},
    }
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)


def load(path: Path) -> Checkpoint:
    path = Path(path)
    obj = _torch_load(path)
    if not isinstance(obj, dict) or obj.get("format") != FORMAT:
        hint = (
            "it looks like a published VadCLIP checkpoint: convert it with "
            "`vadmon import-checkpoint FILE --preset ucf|xd -o models/NAME.pt`"
            if isinstance(obj, dict) and "frame_position_embeddings.weight" in obj
            else "pass a checkpoint written by vadmon (import-checkpoint or train)"
        )
        raise VadmonError("not a vadmon checkpoint", where=str(path), fix=hint)
    if obj.get("version") != VERSION:
        raise VadmonError(f"unsupported checkpoint version {obj.get('version')!r}", where=str(path))
    cfg = VadClipConfig.from_dict(obj["config"])
    sd = _as_state_dict(obj["state_dict"], path)
    return Checkpoint(cfg, sd, dict(obj.get("label_map", {})), dict(obj.get("meta", {})))


def load_model(path: Path, device: str = "cpu", precision: str = "fp32") -> VadCLIP:
    ckpt = load(path)
    try:
        return ckpt.build(device, precision)
    except VadmonError as exc:
        raise VadmonError(exc.what, where=str(path), fix=exc.fix) from None
