"""VadCLIP: frozen CLIP + LGT-Adapter + C-Branch (coarse) + A-Branch (fine alignment).

The forward accepts precomputed text features so streaming inference never re-runs the text
transformer; ``encode_prompts`` computes them (once per class list at inference, every step in
training).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from vadmon.errors import VadmonError
from vadmon.model.adapter import LGTAdapter, PrefixMemo, mlp
from vadmon.model.clip_factory import create_clip
from vadmon.model.config import VadClipConfig
from vadmon.model.prompts import build_prompt_embeddings, encode_prompt_sequences, tokenize


@dataclass
class VadClipOutput:
    text_features: torch.Tensor  # [C, E] prompt features t_c (before the visual prompt)
    logits1: torch.Tensor  # [B, L, 1] C-Branch logits
    logits2: torch.Tensor  # [B, L, C] A-Branch alignment logits
    memo: PrefixMemo | None = None  # this window's reusable rows (``LGTAdapter.encode_window``)


class VadCLIP(LGTAdapter):
    """The whole model; parameter names match the published checkpoint."""

    def __init__(self, config: VadClipConfig, clip: nn.Module | None = None) -> None:
        super().__init__(
            config.visual_length,
            config.visual_width,
            config.visual_head,
            config.visual_layers,
            config.attn_window,
        )
        self.config = config
        width = config.visual_width
        self.mlp1 = mlp(width)
        self.mlp2 = mlp(width)
        self.classifier = nn.Linear(width, 1)
        if clip is None:
            clip = create_clip(config.clip_arch, None, model_cfg=config.clip_model_cfg)
        self.clipmodel = clip
        self.clipmodel.requires_grad_(False)
        text_width = clip.token_embedding.weight.shape[1]
        self.text_prompt_embeddings = nn.Embedding(clip.context_length, text_width)
        nn.init.normal_(self.text_prompt_embeddings.weight, std=0.01)
        self._check_widths()

    def _check_widths(self) -> None:
        proj = self.clipmodel.text_projection
        embed = proj.out_features if isinstance(proj, nn.Linear) else proj.shape[1]
        if embed != self.config.visual_width:
            raise VadmonError(
                f"CLIP embedding width {embed} does not match visual_width "
                f"{self.config.visual_width}",
                fix="choose a CLIP architecture whose embed_dim equals the adapter width",
            )

    def train(self, mode: bool = True) -> VadCLIP:
        """CLIP stays frozen and in eval mode even while the adapter trains."""
        super().train(mode)
        self.clipmodel.eval()
        return self

    # --- text side -------------------------------------------------------------------------
    def encode_prompts(self, class_names: list[str]) -> torch.Tensor:
        """Prompt features ``t_c`` ``[C, E]``; depends on no video."""
        tokens = tokenize(class_names, self.clipmodel.context_length)
        seqs, eot = build_prompt_embeddings(
            self.clipmodel,
            self.text_prompt_embeddings.weight,
            tokens,
            self.config.prompt_prefix,
            self.config.prompt_postfix,
        )
        return encode_prompt_sequences(self.clipmodel, seqs, eot)

    # --- heads -----------------------------------------------------------------------------
    def coarse_logits(self, v: torch.Tensor) -> torch.Tensor:
        return self.classifier(v + self.mlp2(v))

    def fine_logits(
        self, v: torch.Tensor, logits1: torch.Tensor, text_features: torch.Tensor
    ) -> torch.Tensor:
        """Align snippets with class prompts shifted by the anomaly-focused visual prompt.

        The normalisations and the prompt sum run in fp32 whatever ``v``'s dtype; only
        ``mlp1`` runs in the adapter's dtype (a no-op for the fp32 model).
        """
        a = (logits1.transpose(1, 2) @ v).float()  # [B, 1, D], raw logits as attention
        a = a / a.norm(dim=-1, keepdim=True)
        t = text_features.float().unsqueeze(0) + a  # [B, C, D]
        t = t + self.mlp1(t.to(v.dtype)).float()
        vf = v.float()
        v_n = vf / vf.norm(dim=-1, keepdim=True)
        t_n = t / t.norm(dim=-1, keepdim=True)
        return v_n @ t_n.transpose(1, 2) / 0.07

    def forward(
        self,
        visual: torch.Tensor,
        lengths: torch.Tensor | None,
        text_features: torch.Tensor | None = None,
        class_names: list[str] | None = None,
        memo: PrefixMemo | None = None,
    ) -> VadClipOutput:
        """``lengths=None``: every row of ``visual`` is a real snippet (a live window).

        ``memo``: the previous output's ``memo`` for the same camera; rows it still covers are
        reused (exact: ``LGTAdapter.encode_window`` checks that they apply).
        """
        if text_features is None:
            text_features = self.encode_prompts(class_names or self.config.class_names)
        v, kept = self.encode_window(visual, lengths, memo)
        logits1 = self.coarse_logits(v)
        logits2 = self.fine_logits(v, logits1, text_features.to(v.device))
        return VadClipOutput(text_features, logits1.float(), logits2, kept)

    def adapter_state_dict(self) -> dict[str, torch.Tensor]:
        """Only the trained weights (no CLIP): what training checkpoints need."""
        return {k: v for k, v in self.state_dict().items() if not k.startswith("clipmodel.")}


def probabilities(out: VadClipOutput) -> dict[str, torch.Tensor]:
    """Per-snippet scores as the paper reports them."""
    class_probs = F.softmax(out.logits2, dim=-1)
    return {
        "coarse": torch.sigmoid(out.logits1.squeeze(-1)),
        "fine": 1.0 - class_probs[..., 0],
        "class_probs": class_probs,
    }
