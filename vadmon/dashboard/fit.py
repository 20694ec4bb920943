"""Fitting text and columns into a terminal without cutting a word in half.

Why: rich's ``overflow="ellipsis"`` cuts wherever the cell ends ("why …", "retry in 4 …",
"came…"), so a narrow terminal showed fragments that read as something else. Here a column
goes whole (the lowest priority first) and free text ends at a word boundary with "…".
"""

from __future__ import annotations

from collections.abc import Sequence

ELLIPSIS = "…"
ELLIPSIS_DASH = "—"  # no value


def fit_words(text: str, width: int) -> str:
    """``text`` if it fits, else the longest run of whole words that fits, then " …" (so
    the last word reads whole); "" if not even one word fits."""
    if len(text) <= width:
        return text
    words, out = text.split(), ""
    for word in words:
        candidate = f"{out} {word}" if out else word
        if len(candidate) + 2 > width:
            break
        out = candidate
    return f"{out.rstrip(',;:')} {ELLIPSIS}" if out else ""


def pick_columns(
    widths: Sequence[int], priority: Sequence[int], room: int, gap: int = 1
) -> list[int]:
    """Indexes of the columns to show, in display order: the most important first until the
    next one would not fit in ``room`` (each column but the first costs ``gap`` more)."""
    kept: list[int] = []
    used = 0
    for i in priority:
        cost = widths[i] + (gap if kept else 0)
        if used + cost <= room:
            kept.append(i)
            used += cost
    return sorted(kept)


def content_width(title: str, cells: Sequence[str], cap: int) -> int:
    """A column as wide as its widest cell (or title), at most ``cap``."""
    return min(cap, max([len(title), *(len(c) for c in cells)]))


def duration_text(seconds: float | None) -> str:
    if seconds is None or seconds < 0:
        return ELLIPSIS_DASH
    if seconds < 60:
        return f"{seconds:.1f}s"
    if seconds < 3600:
        return f"{int(seconds // 60)}m{int(seconds % 60):02d}s"
    return f"{int(seconds // 3600)}h{int(seconds % 3600 // 60):02d}m"
