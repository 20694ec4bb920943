"""Collapse a repeated failure into one line on change plus sparse "still …" lines.

An unreachable camera or webhook receiver fails the same way on every attempt; one log line
per attempt buries everything else (issue 21: 37 lines in 45 s for one camera). ``RepeatLog``
logs the first failure of a kind in full, then only at attempts 2, 4, 8, 16, … (powers of
two), as ``still <what>, N attempts, next in S s``; a new kind of failure or a recovery is
logged at once and starts the count again.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field


def _is_power_of_two(n: int) -> bool:
    return n > 0 and n & (n - 1) == 0


@dataclass
class RepeatLog:
    """Per-key state; ``key`` is a camera or endpoint name, ``kind`` a short failure class."""

    logger: logging.Logger
    level: int = logging.WARNING
    _state: dict[str, tuple[str, int]] = field(default_factory=dict)

    def failed(self, key: str, kind: str, line: str, next_in_s: float | None = None) -> bool:
        """Record one failed attempt; return True when a line was logged.

        ``line`` is the full message for the first failure of ``kind``; repeats log
        ``<key>: still <kind>, N attempts[, next in S s]`` at power-of-two counts only."""
        last_kind, count = self._state.get(key, ("", 0))
        count = count + 1 if last_kind == kind else 1
        self._state[key] = (kind, count)
        if count == 1:
            self.logger.log(self.level, "%s", line)
            return True
        if not _is_power_of_two(count):
            return False
        tail = f", next in {round(next_in_s, 1):g} s" if next_in_s is not None else ""
        self.logger.log(self.level, "%s: still %s, %d attempts%s", key, kind, count, tail)
        return True

    def recovered(self, key: str, line: str | None = None) -> bool:
        """Clear ``key``'s failure state; log ``line`` (at INFO) only if it was failing."""
        previous = self._state.pop(key, None)
        if previous is None:
            return False
        if line:
            self.logger.info("%s", line)
        return True

    def failing(self, key: str) -> bool:
        return key in self._state
