"""Open-vocabulary evidence: which phrases of a configurable bank a snippet's frames look like.

The snippet embedding is already computed for scoring, and the phrase text features are computed
once at start, so this costs one small matrix product per batch. Probabilities are a softmax over
the bank at CLIP's logit scale: they say which phrase fits *best among the bank*, not that the
phrase is true, which is how the explanation text words them.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

TEMPLATE = "a surveillance camera image of {}."
SCALE = 100.0


class PhraseBank:
    """Text features of the phrases, and the top-k match of each image embedding."""

    def __init__(self, clip: torch.nn.Module, phrases: Sequence[str], top_k: int = 3) -> None:
        self.phrases = list(phrases)
        self.top_k = max(1, min(top_k, len(self.phrases)))
        self._text = self._encode(clip) if self.phrases else None

    @classmethod
    def from_config(cls, explain, clip: torch.nn.Module) -> PhraseBank:
        """The bank of an ``explain:`` config section (``phrases``, ``top_k``)."""
        return cls(clip, explain.phrases, explain.top_k)

    @torch.inference_mode()
    def _encode(self, clip: torch.nn.Module) -> torch.Tensor:
        from open_clip import tokenize

        device = next(clip.parameters()).device
        tokens = tokenize([TEMPLATE.format(p) for p in self.phrases]).to(device)
        return F.normalize(clip.encode_text(tokens).float(), dim=-1).cpu()

    @torch.inference_mode()
    def match(self, embeddings: torch.Tensor) -> list[list[tuple[str, float]]]:
        """Per embedding row: the ``top_k`` (phrase, probability over the bank), best first."""
        if self._text is None:
            return [[] for _ in range(len(embeddings))]
        emb = F.normalize(embeddings.detach().float().cpu(), dim=-1)
        probs = torch.softmax(SCALE * emb @ self._text.T, dim=-1)
        top = torch.topk(probs, self.top_k, dim=-1)
        return [
            [(self.phrases[int(i)], round(float(p), 4)) for p, i in zip(vals, idx, strict=True)]
            for vals, idx in zip(top.values, top.indices, strict=True)
        ]
