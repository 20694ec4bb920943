"""Per-camera sliding windows of snippet embeddings.

Alignment with offline scoring (the published test splits a video into fixed 256-snippet
chunks): a streaming score must be causal, so the newest snippet is scored at the *end* of a
window of recent snippets. The window start is kept on a multiple of ``attn_window`` so that
the adapter's block-diagonal attention windows cover the same snippets as offline; the window
holds between ``size - attn_window + 1`` and ``size`` snippets. What still differs from
offline: position embeddings count from the window start rather than the chunk start, offline
attention also sees the not-yet-arrived snippets of the current block, and the global
similarity graph spans a different set of snippets.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import torch


@dataclass
class WindowEntry:
    index: int  # absolute snippet index within the camera's stream
    embedding: torch.Tensor  # [D]


class SlidingWindow:
    """Recent embeddings of one camera, block-aligned to the attention window."""

    def __init__(self, size: int, attn_window: int) -> None:
        if not 0 < attn_window <= size:
            raise ValueError("attn_window must be in 1..size")
        self.size = size
        self.attn_window = attn_window
        self._entries: deque[WindowEntry] = deque()
        self._next = 0  # absolute index of the next snippet

    def __len__(self) -> int:
        return len(self._entries)

    def reset(self) -> None:
        self._entries.clear()
        self._next = 0

    def push(self, embedding: torch.Tensor) -> None:
        self._entries.append(WindowEntry(self._next, embedding))
        self._next += 1
        self._trim()

    def _trim(self) -> None:
        newest = self._entries[-1].index
        start = newest - self.size + 1
        start = max(0, -(-start // self.attn_window) * self.attn_window)  # round up to block
        while self._entries and self._entries[0].index < start:
            self._entries.popleft()

    def tensor(self) -> torch.Tensor:
        """``[n, D]`` embeddings, oldest first."""
        return torch.stack([e.embedding for e in self._entries])
