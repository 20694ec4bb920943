"""VadCLIP as a plain PyTorch model: no streaming code is imported from here.

Construction (``clip_factory``, ``checkpoint``) is separate from architecture (``adapter``,
``vadclip``), and model shapes are data (``config``, ``presets/``), as in open_clip.

Names are resolved lazily (PEP 562): reading a preset (``vadmon.model.config``) must not load
torch, because every ``vadmon`` command builds the full CLI parser and the capture and
supervisor processes would otherwise carry ~500 MB of torch for nothing.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "Checkpoint": "checkpoint",
    "import_published": "checkpoint",
    "load": "checkpoint",
    "load_model": "checkpoint",
    "save": "checkpoint",
    "resolve_precision": "clip_factory",
    "create_clip": "clip_factory",
    "encode_images": "clip_factory",
    "image_spec": "clip_factory",
    "VadClipConfig": "config",
    "load_preset": "config",
    "score_features": "predict",
    "PromptCache": "prompts",
    "StreamingStep": "stream",
    "VadCLIP": "vadclip",
    "VadClipOutput": "vadclip",
    "probabilities": "vadclip",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'vadmon.model' has no attribute {name!r}")
    return getattr(importlib.import_module(f"vadmon.model.{module}"), name)
