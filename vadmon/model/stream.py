"""Scoring one more snippet of a live window with the model's own modules, as cheaply as exact.

Why a separate entry point: ``VadCLIP.forward`` called as published recomputes the class
prompts (the text transformer dominates its cost) and loops over batch items for padding. A
live camera calls it once per snippet with a full, unpadded window and a fixed class list, so
``StreamingStep`` calls the *same* ``VadCLIP.forward`` with the prompt features computed once
and ``lengths=None`` (no padding: one batched softmax; the distance adjacency is cached per
length by ``DistanceAdj``). There is no second implementation of the adapter or the heads.

What cannot be skipped: the similarity graph's row softmax spans the whole window, so one new
snippet changes every row of the adapter's output, and the A-Branch's visual prompt is a sum
over all rows of ``logits1 × v``; those parts, the second graph layers and both heads run over
the whole window on every step. What can be: the local transformer (block-diagonal attention)
and the row-wise graph projections and residual conv of rows in complete attention blocks do
not change while the window start stays on the same block (``attn_window - 1`` of every
``attn_window`` snippets), so the caller hands back the previous output's ``memo`` and only the
newest block runs (``LGTAdapter.encode_window``; it checks that the memo's inputs match).
The other lever is arithmetic: ``bf16`` runs a bf16 copy of the adapter and heads (layer
norms, the similarity graph and the final normalisations stay fp32; the frozen CLIP is
shared, not copied), faster only on hardware with native bf16 matmuls
(``vadmon.model.precision`` measures which).
"""

from __future__ import annotations

import copy

import torch

from vadmon.model.adapter import PrefixMemo
from vadmon.model.precision import cast_weights
from vadmon.model.vadclip import VadCLIP, VadClipOutput


def adapter_copy(model: VadCLIP, dtype: torch.dtype) -> VadCLIP:
    """The model with its adapter and heads cast to ``dtype``; CLIP is shared, not copied."""
    clip = model.clipmodel
    twin = copy.deepcopy(model, memo={id(clip): clip})
    return cast_weights(twin, dtype, skip=("clipmodel", "text_prompt_embeddings"))


class StreamingStep:
    """The adapter and both heads over one camera window (or a batch of equal-length windows).

    Output equals ``model(window, lengths=full, text_features=cached)`` (fp32: to float
    rounding; bf16: to bf16 accuracy). Rebuild it when the model's weights or the class list
    change.
    """

    def __init__(
        self,
        model: VadCLIP,
        class_names: list[str] | None = None,
        *,
        dtype: torch.dtype = torch.float32,
        text_features: torch.Tensor | None = None,
    ) -> None:
        self.dtype = dtype
        self.device = model.frame_position_embeddings.weight.device
        with torch.inference_mode():
            if text_features is None:
                text_features = model.encode_prompts(class_names or model.config.class_names)
        self.text_features = text_features.detach().float().to(self.device)
        self.model = (model if dtype == torch.float32 else adapter_copy(model, dtype)).eval()

    def __call__(self, window: torch.Tensor, memo: PrefixMemo | None = None) -> VadClipOutput:
        """``window``: ``[B, n, D]`` or ``[n, D]`` snippet features, every row valid.

        ``memo``: the ``memo`` of this camera's previous output; while the window start stays
        put (``attn_window - 1`` of every ``attn_window`` snippets) the local transformer and
        the row-wise graph parts run only on the newest attention block.
        """
        if window.dim() == 2:
            window = window.unsqueeze(0)
        with torch.inference_mode():
            return self.model(
                window.to(self.device), None, text_features=self.text_features, memo=memo
            )
