"""Per-camera sliding windows of snippet embeddings, with gaps defined.

Alignment with offline scoring (the published test splits a video into fixed 256-snippet
chunks): a streaming score must be causal, so a snippet is scored near the *end* of a window of
recent snippets. The window start is kept on the attention-block grid of the current segment
(``origin + k·attn_window``) so that the adapter's block-diagonal attention windows cover the
same snippets as offline; the window holds between ``size - attn_window + 1`` and ``size``
snippets.

Gaps (snippets never scored: skipped under load, overwritten in the ring, or a camera outage).
Every entry carries its absolute snippet index, and the window is defined on the sequence the
offline protocol would see:

- a short gap (1..``max_gap`` missing snippets) is filled by holding the last embedding, one
  entry per missing snippet, so position embeddings, attention blocks and the distance graph
  ``exp(-|i-j|/e)`` keep counting real snippets; filled entries are never scored themselves;
- a longer gap (more than ``max_gap`` missing, by index or by time) or an index that goes
  backwards (capture restarted) starts a new segment: the window is emptied and its block grid
  restarts at the new snippet, exactly as if a new video began there.

``tests/test_streaming_vs_offline.py`` checks scores against the independent spec
transcription run on this filled, segmented sequence.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import torch


@dataclass
class WindowEntry:
    index: int  # absolute snippet index within the camera's stream
    embedding: torch.Tensor  # [D]
    filled: bool = False  # stands in for a missing snippet (previous embedding held)


def missing_by_time(prev_end: float | None, duration: float, t_start: float | None) -> int:
    """Whole snippets that fit in the silence between two snippets (an outage keeps indices
    consecutive, so the clock is the only witness)."""
    if prev_end is None or t_start is None or duration <= 0:
        return 0
    return max(0, int((t_start - prev_end) / duration))


class SlidingWindow:
    """Recent embeddings of one camera, block-aligned to the attention window of its segment."""

    def __init__(self, size: int, attn_window: int, max_gap: int = 0) -> None:
        if not 0 < attn_window <= size:
            raise ValueError("attn_window must be in 1..size")
        if max_gap < 0:
            raise ValueError("max_gap must be >= 0")
        self.size = size
        self.attn_window = attn_window
        self.max_gap = max_gap
        self._entries: deque[WindowEntry] = deque()
        self._origin = 0  # index where the current segment began (its block grid origin)
        self._last_end: float | None = None
        self._duration = 0.0
        self.restarts = 0
        self.filled = 0

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def newest(self) -> int | None:
        return self._entries[-1].index if self._entries else None

    def reset(self) -> None:
        self._entries.clear()
        self._last_end = None

    def breaks_segment(self, index: int, t_start: float | None = None) -> bool:
        """Would ``index`` start a new segment (gap too long, or index went backwards)?"""
        newest = self.newest
        if newest is None:
            return False
        gap = max(index - newest - 1, missing_by_time(self._last_end, self._duration, t_start))
        return index <= newest or gap > self.max_gap

    def push(
        self,
        index: int,
        embedding: torch.Tensor,
        t_start: float | None = None,
        t_end: float | None = None,
    ) -> None:
        if self.breaks_segment(index, t_start):
            self.restarts += 1
            self.reset()
        if not self._entries:
            self._origin = index
        else:
            last = self._entries[-1]
            for missing in range(last.index + 1, index):
                self._entries.append(WindowEntry(missing, last.embedding, filled=True))
                self.filled += 1
        self._entries.append(WindowEntry(index, embedding))
        if t_start is not None and t_end is not None:
            self._last_end, self._duration = t_end, max(0.0, t_end - t_start)
        self._trim()

    def start_for(self, newest: int) -> int:
        """First index the window keeps once ``newest`` is in (same segment)."""
        start = newest - self.size + 1 - self._origin
        return self._origin + max(0, -(-start // self.attn_window) * self.attn_window)

    def _trim(self) -> None:
        start = self.start_for(self._entries[-1].index)
        while self._entries and self._entries[0].index < start:
            self._entries.popleft()

    def row_of(self, index: int) -> int | None:
        """Row of snippet ``index`` in ``tensor()``, None when it is not in the window."""
        if not self._entries:
            return None
        row = index - self._entries[0].index
        return row if 0 <= row < len(self._entries) else None

    def tensor(self) -> torch.Tensor:
        """``[n, D]`` embeddings, oldest first."""
        return torch.stack([e.embedding for e in self._entries])
