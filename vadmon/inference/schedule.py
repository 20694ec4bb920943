"""Which received snippets one inference step scores: latest wins, held ones first, fair shares.

Kept apart from the loop so the policy reads as one piece: stale snippets (older than
``max_age_s``) and all but the newest ``per_camera_max`` per camera are dropped; snippets that
capture held while our model loaded are all scored, in order, at most a batch a step; live ones
fill the rest of the batch round-robin across cameras, starting after the camera served last,
so no camera is favoured by arrival order or name. Every snippet left out is counted through
``drop(camera, reason, count)``.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from typing import Protocol

from vadmon.runtime.messages import SnippetMessage

Received = tuple[SnippetMessage, bytes | None]
Drop = Callable[[str, str, int], None]


class Limits(Protocol):
    """The part of ``InferenceSettings`` the policy reads."""

    max_age_s: float
    per_camera_max: int
    batch_max: int


def held_count(got: list) -> int:
    """Snippets capture held while the model loaded (their frames ride inline)."""
    return sum(1 for m, p in got if isinstance(m, SnippetMessage) and m.held and p is not None)


def select(
    msgs: list[Received], now: float, limits: Limits, rr_last: str, drop: Drop
) -> tuple[list[Received], str]:
    """The snippets to score now, and the camera served last (for the next step's rounds)."""
    by_cam: dict[str, list[Received]] = defaultdict(list)
    held: list[Received] = []
    for m, payload in msgs:
        if m.held and payload is not None:  # frames ride along: scored whatever their age
            held.append((m, payload))
        elif now - m.t_end > limits.max_age_s:
            drop(m.camera, "stale", 1)
        else:
            by_cam[m.camera].append((m, payload))
    queues: dict[str, list[Received]] = {}
    for cam, items in by_cam.items():
        items.sort(key=lambda item: item[0].snippet_index)
        cut = len(items) - limits.per_camera_max
        if cut > 0:
            drop(cam, "backlog", cut)
        queues[cam] = items[max(0, cut) :]
    room = max(0, limits.batch_max - len(held))  # live ones fill what the held leave
    live, rr_last = round_robin(queues, room, rr_last, drop)
    return sorted(held, key=lambda item: item[0].snippet_index) + live, rr_last


def round_robin(
    queues: dict[str, list[Received]], limit: int, rr_last: str, drop: Drop
) -> tuple[list[Received], str]:
    """At most ``limit``: one snippet per camera per round (newest first), the rounds starting
    after ``rr_last``; the rest is a capacity drop. Returned in snippet order per camera."""
    order = sorted(queues)
    start = next((i for i, cam in enumerate(order) if cam > rr_last), 0)
    order = order[start:] + order[:start]
    keep: list[Received] = []
    while len(keep) < limit and any(queues[c] for c in order):
        for cam in order:
            if queues[cam] and len(keep) < limit:
                keep.append(queues[cam].pop())
                rr_last = cam
    for cam, left in queues.items():
        if left:
            drop(cam, "capacity", len(left))
    return sorted(keep, key=lambda item: item[0].snippet_index), rr_last
