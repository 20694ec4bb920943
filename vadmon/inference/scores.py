"""Embeddings → per-snippet scores: the VadCLIP stream scorer and the zero-shot scorer.

Both keep text features constant (computed once per class list); only the video side runs per
snippet. The inference process (``vadmon.inference.process``) owns sockets and batching; this module is
pure computation, usable from a notebook or a test.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from vadmon.inference.window import SlidingWindow
from vadmon.model.prompts import PromptCache
from vadmon.model.stream import StreamingStep
from vadmon.model.vadclip import VadCLIP, probabilities

NORMAL_PROMPT = "an ordinary scene where nothing unusual happens"
TEMPLATES = (
    "a photo of {}.",
    "a surveillance camera image of {}.",
    "a cctv video frame showing {}.",
)


@dataclass(frozen=True)
class SnippetScore:
    score: float  # anomaly score in [0, 1] (C-Branch sigmoid; zero-shot: 1 − P(normal))
    fine: float  # 1 − P(normal) from the class posterior
    class_probs: list[float]


class VadClipStreamScorer:
    """The newest snippet of each camera, scored at the end of its sliding window.

    Definition (tested against the independent spec transcription): the score of snippet i is
    the adapter + C-Branch output at the last row of the unpadded window [start, i], ``start``
    on a multiple of ``attn_window`` so the attention blocks cover the same snippets as offline.
    Zero-padding the window to ``visual_length`` (the published protocol's view of a short
    video) was measured and agrees *less* with offline chunk scores (correlation 0.48 vs 0.61 on
    the official UCF fixture model), because the newest block would always hold padding.
    Windows of equal length batch exactly; unequal ones run as separate groups.
    """

    mode = "vadclip"

    def __init__(
        self,
        model: VadCLIP,
        class_names: list[str] | None = None,
        window: int | None = None,
        dtype: torch.dtype = torch.float32,
    ) -> None:
        self.model = model.eval()
        self.class_names = list(class_names or model.config.class_names)
        cfg = model.config
        self.window = min(window or cfg.visual_length, cfg.visual_length)
        self.attn_window = min(cfg.attn_window, self.window)
        text = PromptCache().get(model, self.class_names)
        self.step = StreamingStep(model, self.class_names, dtype=dtype, text_features=text)
        self._windows: dict[str, SlidingWindow] = {}

    def reset(self, camera: str) -> None:
        self._windows.pop(camera, None)

    def window_length(self, camera: str) -> int:
        return len(self._windows.get(camera, ()))

    @torch.inference_mode()
    def score(self, cameras: list[str], embeddings: torch.Tensor) -> list[SnippetScore]:
        """One new embedding per listed camera (a camera may appear once per call)."""
        for cam, emb in zip(cameras, embeddings, strict=True):
            win = self._windows.get(cam)
            if win is None:
                win = self._windows[cam] = SlidingWindow(self.window, self.attn_window)
            win.push(emb.float().cpu())
        groups: dict[int, list[int]] = defaultdict(list)
        for i, cam in enumerate(cameras):
            groups[len(self._windows[cam])].append(i)
        results: list[SnippetScore | None] = [None] * len(cameras)
        for n, idx in groups.items():
            batch = torch.stack([self._windows[cameras[i]].tensor() for i in idx])
            probs = probabilities(self.step(batch))
            for row, i in enumerate(idx):
                results[i] = SnippetScore(
                    score=float(probs["coarse"][row, n - 1]),
                    fine=float(probs["fine"][row, n - 1]),
                    class_probs=[float(p) for p in probs["class_probs"][row, n - 1]],
                )
        return [r for r in results if r is not None]


class ZeroShotScorer:
    """Frozen CLIP image–text similarity with handcrafted prompts: works with CLIP weights alone."""

    mode = "zeroshot"

    def __init__(self, clip: torch.nn.Module, class_names: list[str], scale: float = 100.0) -> None:
        self.clip = clip
        self.class_names = list(class_names)
        self.scale = scale
        self._text = self._encode_classes(self.class_names)

    @torch.inference_mode()
    def _encode_classes(self, names: list[str]) -> torch.Tensor:
        from open_clip import tokenize

        feats = []
        for i, name in enumerate(names):
            subject = NORMAL_PROMPT if i == 0 else name
            tokens = tokenize([t.format(subject) for t in TEMPLATES])
            device = next(self.clip.parameters()).device
            emb = F.normalize(self.clip.encode_text(tokens.to(device)).float(), dim=-1)
            feats.append(F.normalize(emb.mean(0), dim=-1))
        return torch.stack(feats)

    def reset(self, camera: str) -> None:  # stateless per camera
        return None

    @torch.inference_mode()
    def score(self, cameras: list[str], embeddings: torch.Tensor) -> list[SnippetScore]:
        emb = F.normalize(embeddings.float(), dim=-1).to(self._text.device)
        probs = torch.softmax(self.scale * emb @ self._text.T, dim=-1).cpu()
        out = []
        for row in probs:
            fine = float(1.0 - row[0])
            out.append(SnippetScore(score=fine, fine=fine, class_probs=[float(p) for p in row]))
        return out
