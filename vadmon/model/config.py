"""Model configuration kept as data.

A ``VadClipConfig`` fully describes a VadCLIP model (adapter sizes, prompts, class names, and the
open_clip architecture it sits on), so it can be printed, diffed and stored inside a checkpoint.
Presets for the published models live as JSON in ``presets/`` beside this file.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from vadmon.errors import VadmonError

PRESET_DIR = Path(__file__).with_name("presets")


@dataclass
class VadClipConfig:
    """Everything needed to rebuild a VadCLIP model (weights aside).

    ``visual_width`` must equal CLIP's embedding width (the output of ``encode_image``) because
    the adapter's visual features are compared with projected text features.
    ``clip_model_cfg`` is an open_clip model config dict; when set it wins over ``clip_arch``
    (imported checkpoints carry the exact CLIP they were trained with).
    """

    class_names: list[str]
    visual_length: int = 256
    visual_width: int = 512
    visual_head: int = 1
    visual_layers: int = 2
    attn_window: int = 8
    prompt_prefix: int = 10
    prompt_postfix: int = 10
    clip_arch: str = "ViT-B-16"
    clip_model_cfg: dict[str, Any] | None = None

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        if len(self.class_names) < 2:
            raise VadmonError(
                "VadCLIP needs at least two class names (normal first)",
                fix="give the normal class followed by the anomaly classes",
            )
        for name in ("visual_length", "visual_width", "visual_head", "visual_layers"):
            if getattr(self, name) <= 0:
                raise VadmonError(f"model config {name} must be positive")
        if self.visual_width % self.visual_head:
            raise VadmonError(
                f"visual_width {self.visual_width} is not divisible by visual_head "
                f"{self.visual_head}"
            )
        if not 0 < self.attn_window <= self.visual_length:
            raise VadmonError(
                f"attn_window {self.attn_window} must be in 1..visual_length ({self.visual_length})"
            )

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> VadClipConfig:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise VadmonError(
                f"unknown model config key {unknown[0]!r}", fix=f"known: {sorted(known)}"
            )
        return cls(**data)

    def replace(self, **changes: Any) -> VadClipConfig:
        data = self.to_dict()
        data.update({k: v for k, v in changes.items() if v is not None})
        return VadClipConfig.from_dict(data)


@dataclass
class Preset:
    """A published setting: model shape, label map and training hyper-parameters."""

    name: str
    description: str
    model: dict[str, Any]
    label_map: dict[str, str]
    train: dict[str, Any] = field(default_factory=dict)

    def model_config(self, **overrides: Any) -> VadClipConfig:
        data = dict(self.model)
        data.update({k: v for k, v in overrides.items() if v is not None})
        return VadClipConfig.from_dict(data)


def list_presets() -> list[str]:
    return sorted(p.stem for p in PRESET_DIR.glob("*.json"))


def load_preset(name: str) -> Preset:
    path = PRESET_DIR / f"{name}.json"
    if not path.is_file():
        raise VadmonError(
            f"unknown preset {name!r}", fix=f"choose one of: {', '.join(list_presets())}"
        )
    return Preset(**json.loads(path.read_text()))
