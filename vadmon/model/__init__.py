"""VadCLIP as a plain PyTorch model: no streaming code is imported from here.

Construction (``clip_factory``, ``checkpoint``) is separate from architecture (``adapter``,
``vadclip``), and model shapes are data (``config``, ``presets/``), as in open_clip.
"""

from vadmon.model.checkpoint import Checkpoint, import_published, load, load_model, save
from vadmon.model.clip_factory import (
    best_cpu_precision,
    best_precision,
    create_clip,
    encode_images,
    image_spec,
)
from vadmon.model.config import VadClipConfig, load_preset
from vadmon.model.predict import score_features
from vadmon.model.prompts import PromptCache
from vadmon.model.stream import StreamingStep
from vadmon.model.vadclip import VadCLIP, VadClipOutput, probabilities

__all__ = [
    "Checkpoint",
    "PromptCache",
    "StreamingStep",
    "VadCLIP",
    "VadClipConfig",
    "VadClipOutput",
    "best_cpu_precision",
    "best_precision",
    "create_clip",
    "encode_images",
    "image_spec",
    "import_published",
    "load",
    "load_model",
    "load_preset",
    "probabilities",
    "save",
    "score_features",
]
