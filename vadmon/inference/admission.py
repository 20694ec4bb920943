"""Which received snippets and previews inference may use, and the count of those it may not.

Any process of this user can write to the ipc snippet socket, and over a tcp link any allowed
key can name any camera. State per camera (stats, windows, heartbeat entries) is kept only for
cameras this config has: a message naming another camera is dropped into one process counter
(``unknown_camera``), so 20,000 made-up names cost one integer, not 20,000 entries that grew
memory and pushed the heartbeat past its size limit.

Refusals by the link (a key speaking for a camera bound to another key, a snippet dated ahead
of our clock) are counted per configured camera and reason, shown in the heartbeat (and so on
/metrics), and logged: the first of each kind, then at every power of two, so a flood is
visible in the log without filling it.
"""

from __future__ import annotations

import logging
from collections import defaultdict

from vadmon.runtime.messages import PreviewFrame, SnippetMessage

log = logging.getLogger("vadmon.inference.process")

REFUSAL_WORDS = {
    "refused_camera": "sent by a client key that may not send this camera",
    "clock_skew": "dated too far ahead of this host's clock",
}


class Admission:
    """Counts for messages inference drops before they reach any per-camera state."""

    def __init__(self, cameras: frozenset[str]) -> None:
        self.cameras = cameras
        self.unknown = 0  # messages naming a camera this config does not have
        self.refused: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))

    def known(self, msg: object) -> bool:
        """False (counted) for a snippet or preview of a camera that is not configured."""
        if not isinstance(msg, SnippetMessage | PreviewFrame) or msg.camera in self.cameras:
            return True
        self.unknown += 1
        if _log_now(self.unknown):
            log.warning("dropped %d message(s) naming cameras not in this config", self.unknown)
        return False

    def count_refusal(self, msg: SnippetMessage | PreviewFrame, reason: str) -> None:
        """A known camera's message the link refused: per camera and reason, logged."""
        counts = self.refused[msg.camera]
        counts[reason] += 1
        if _log_now(counts[reason]):
            words = REFUSAL_WORDS.get(reason, reason)
            log.warning(
                "camera %s: refused %d message(s) %s (%s)", msg.camera, counts[reason], words,
                reason,
            )  # fmt: skip

    def of_camera(self, camera: str) -> dict[str, int]:
        return dict(self.refused.get(camera, {}))


def _log_now(n: int) -> bool:
    return n & (n - 1) == 0  # 1, 2, 4, 8, …
