"""Scoring one more snippet of a live window, as cheaply as the model allows.

Why a separate path: ``VadCLIP.forward`` is written for training and the offline protocol
(padded batches, per-item lengths, prompts recomputed unless passed in). A live camera calls it
once per snippet with a full, unpadded window and a fixed class list, so everything that does
not depend on the window can be computed once:

- the class-prompt features (the text transformer dominates the published forward's cost),
- the attention mask and the distance adjacency for each window length,
- the similarity adjacency needs no per-item Python loop when no row is padding.

What cannot be skipped: the similarity graph's row softmax spans the whole window, so one new
snippet changes every row of the adapter's output, and the A-Branch's visual prompt is a sum
over all rows of ``logits1 × v``. An exact step therefore recomputes the adapter over the whole
window; its cost is linear in the window length. The remaining lever is arithmetic: ``bf16``
keeps a bf16 copy of the adapter and heads (layer norms, the similarity graph and the final
normalisations stay fp32), which runs several times faster on CPUs with native bf16 matmuls
(AVX-512-BF16/AMX) and on GPUs, at a small score deviation (measured by ``vadmon bench step``).
"""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import nn

from vadmon.model.adapter import LayerNorm, window_mask
from vadmon.model.vadclip import VadCLIP, VadClipOutput

_ADAPTER_PARTS = (
    "frame_position_embeddings",
    "temporal",
    "gc1",
    "gc2",
    "gc3",
    "gc4",
    "linear",
    "mlp1",
    "mlp2",
    "classifier",
)


def _weights_to(module: nn.Module, dtype: torch.dtype) -> nn.Module:
    """Cast every layer except the fp32 layer norms (CLIP's LayerNorm upcasts its input)."""
    for child in module.modules():
        if isinstance(child, LayerNorm):
            continue
        for name, param in list(child.named_parameters(recurse=False)):
            param.data = param.data.to(dtype)
            setattr(child, name, param)
    return module


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
        self.attn_window = model.attn_window
        self.device = model.frame_position_embeddings.weight.device
        with torch.inference_mode():
            if text_features is None:
                text_features = model.encode_prompts(class_names or model.config.class_names)
        self.text_features = text_features.detach().float().to(self.device)
        parts = nn.ModuleDict({name: getattr(model, name) for name in _ADAPTER_PARTS})
        if dtype != torch.float32:
            parts = _weights_to(copy.deepcopy(parts), dtype)
        self.parts = parts.eval()
        self._masks: dict[int, torch.Tensor] = {}
        self._distance: dict[int, torch.Tensor] = {}

    # --- per-length constants ----------------------------------------------------------------
    def _mask(self, n: int) -> torch.Tensor:
        if n not in self._masks:
            mask = window_mask(n, self.attn_window, self.device)
            self._masks[n] = mask.to(self.dtype)
        return self._masks[n]

    def _distance_adj(self, n: int) -> torch.Tensor:
        if n not in self._distance:
            pos = torch.arange(n, device=self.device, dtype=torch.float32)
            dist = (pos[:, None] - pos[None, :]).abs()
            self._distance[n] = torch.exp(-dist / torch.e).to(self.dtype)
        return self._distance[n]

    # --- forward -----------------------------------------------------------------------------
    def _similarity(self, x: torch.Tensor) -> torch.Tensor:
        """Row-softmaxed thresholded cosine similarity; no padding, so no per-item loop."""
        xf = x.float()
        sim = xf @ xf.transpose(1, 2)
        norm = xf.norm(p=2, dim=2, keepdim=True)
        sim = sim / (norm @ norm.transpose(1, 2) + 1e-20)
        return torch.softmax(F.threshold(sim, 0.7, 0.0), dim=2).to(self.dtype)

    def encode_video(self, window: torch.Tensor) -> torch.Tensor:
        p = self.parts
        n = window.shape[1]
        gelu = _quick_gelu
        x = window.to(self.dtype) + p["frame_position_embeddings"].weight[:n].unsqueeze(0)
        x = p["temporal"](x, self._mask(n))
        adj = self._similarity(x)
        dis = self._distance_adj(n).unsqueeze(0)
        x1 = gelu(p["gc2"](gelu(p["gc1"](x, adj)), adj))
        x2 = gelu(p["gc4"](gelu(p["gc3"](x, dis)), dis))
        return p["linear"](torch.cat((x1, x2), dim=2))

    def __call__(self, window: torch.Tensor) -> VadClipOutput:
        """``window``: ``[B, n, D]`` or ``[n, D]`` snippet features, every row valid."""
        if window.dim() == 2:
            window = window.unsqueeze(0)
        with torch.inference_mode():
            p = self.parts
            v = self.encode_video(window.to(self.device))
            logits1 = p["classifier"](v + p["mlp2"](v))
            a = (logits1.transpose(1, 2) @ v).float()
            a = a / a.norm(dim=-1, keepdim=True)
            t = self.text_features.unsqueeze(0) + a
            t = t + p["mlp1"](t.to(self.dtype)).float()
            vf = v.float()
            v_n = vf / vf.norm(dim=-1, keepdim=True)
            t_n = t / t.norm(dim=-1, keepdim=True)
            logits2 = v_n @ t_n.transpose(1, 2) / 0.07
            return VadClipOutput(self.text_features, logits1.float(), logits2)


def _quick_gelu(x: torch.Tensor) -> torch.Tensor:
    return x * torch.sigmoid(1.702 * x)
