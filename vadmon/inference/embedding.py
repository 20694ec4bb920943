"""Snippet frames → CLIP embeddings, batched across cameras.

Each sampled frame follows the published feature recipe (340×256 resize, centre crop, CLIP
preprocessing) so streaming embeddings live in the same space as the features the adapter was
trained on; a snippet's embedding is the mean over its sampled frames (k = 1: one frame).
The image tower runs behind an ``ImageEncoder`` (torch, OpenVINO, Triton: ``vadmon.encoder``);
``clip`` stays the torch CLIP for the text side (phrase banks, zero-shot prompts).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from vadmon.encoder.base import ImageEncoder
from vadmon.encoder.torch_backend import TorchEncoder
from vadmon.model.clip_factory import image_spec
from vadmon.model.crops import ClipPreprocess, crops_of


class SnippetEncoder:
    """One CLIP forward for all snippets that are ready, whichever camera they came from."""

    remote = False  # True: submit()/completed() (vadmon.inference.remote), the tower elsewhere

    def __init__(
        self, clip: torch.nn.Module, crop_index: int = 0, image_encoder: ImageEncoder | None = None
    ) -> None:
        self.clip = clip
        self.image_encoder = image_encoder or TorchEncoder(clip)
        self.selection = None  # vadmon.encoder.select.Selection when a backend was chosen
        spec = image_spec(clip)
        self.preprocess = ClipPreprocess(size=spec.size, mean=spec.mean, std=spec.std)
        self.crop_index = crop_index

    def prepare(self, frames: Sequence[np.ndarray]) -> torch.Tensor:
        """BGR uint8 frames → normalised ``[N, 3, S, S]``."""
        crops = np.stack([crops_of(f, (self.crop_index,))[0] for f in frames])
        return self.preprocess(crops)

    @torch.inference_mode()
    def encode(self, snippets: Sequence[Sequence[np.ndarray]]) -> torch.Tensor:
        """``snippets[i]`` = the sampled frames of snippet i → ``[len(snippets), D]`` fp32."""
        counts = [len(s) for s in snippets]
        flat = [f for s in snippets for f in s]
        if any(not isinstance(f, np.ndarray) or f.ndim != 3 for f in flat):
            raise ValueError("encode() takes a list of snippets, each a list of HxWx3 frames")
        if not flat:
            return torch.empty(0, 0)
        emb = self.image_encoder.encode(self.prepare(flat)).cpu()
        return torch.stack([chunk.mean(0) for chunk in torch.split(emb, counts)])

    def status(self) -> str:
        """The image tower, as the dashboard shows it."""
        return "torch (local)"

    def completed(self) -> list:
        """Nothing is ever in flight locally: ``encode`` answers at once."""
        return []
