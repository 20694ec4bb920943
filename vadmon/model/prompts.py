"""Learnable text prompts for the A-Branch.

The class-prompt features depend on no video, so at inference they are a constant: compute them
once per class list (``PromptCache``) and pass them to the forward. Only training recomputes them
every step, because ``text_prompt_embeddings`` is being learned.
"""

from __future__ import annotations

import open_clip
import torch
from torch import nn

from vadmon.errors import VadmonError


def tokenize(class_names: list[str], context_length: int = 77) -> torch.Tensor:
    return open_clip.tokenize(class_names, context_length=context_length)


def build_prompt_embeddings(
    clip: nn.Module,
    prompt: torch.Tensor,
    tokens: torch.Tensor,
    prefix: int,
    postfix: int,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Place SOT, the class words and EOT among the learnable context vectors.

    Returns the ``[C, ctx, E]`` embedding sequences and the index of EOT in each, where the
    text transformer's output is read.
    """
    ctx = prompt.shape[0]
    words = clip.token_embedding(tokens.to(prompt.device)).to(prompt.dtype)
    eot_in_tokens = tokens.argmax(dim=-1)
    seqs = prompt.unsqueeze(0).repeat(len(tokens), 1, 1)
    eot_pos = torch.empty(len(tokens), dtype=torch.long)
    for i, k in enumerate(eot_in_tokens.tolist()):
        pos = prefix + k + postfix
        if pos >= ctx:
            raise VadmonError(
                f"class name #{i} is too long for the prompt ({k - 1} tokens + "
                f"{prefix}+{postfix} context > {ctx})",
                fix="shorten the class name or reduce prompt_prefix/prompt_postfix",
            )
        seqs[i, 0] = words[i, 0]
        seqs[i, prefix + 1 : prefix + k] = words[i, 1:k]
        seqs[i, pos] = words[i, k]
        eot_pos[i] = pos
    return seqs, eot_pos


def encode_prompt_sequences(clip: nn.Module, seqs: torch.Tensor, eot: torch.Tensor) -> torch.Tensor:
    """Run CLIP's (frozen) text transformer on embedding sequences instead of token ids."""
    x = seqs + clip.positional_embedding.to(seqs.dtype)
    x = clip.transformer(x, attn_mask=clip.attn_mask)
    x = clip.ln_final(x)
    x = x[torch.arange(x.shape[0], device=x.device), eot.to(x.device)]
    proj = clip.text_projection
    return proj(x) if isinstance(proj, nn.Linear) else x @ proj


class PromptCache:
    """Text features per class list, valid while the prompt weights do not change."""

    def __init__(self) -> None:
        self._cache: dict[tuple[str, ...], torch.Tensor] = {}
        self._version: int | None = None

    def get(self, model: nn.Module, class_names: list[str]) -> torch.Tensor:
        version = model.text_prompt_embeddings.weight._version
        if version != self._version:
            self._cache.clear()
            self._version = version
        key = tuple(class_names)
        if key not in self._cache:
            with torch.no_grad():
                self._cache[key] = model.encode_prompts(class_names).detach()
        return self._cache[key]
