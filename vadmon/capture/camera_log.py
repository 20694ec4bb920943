"""A failing camera's log: one line when it starts failing a new way, then "still …" lines at
attempts 2, 4, 8, … instead of the connect / error / state / retry lines of every attempt
(issue 21: an unreachable camera wrote 37 lines in 45 s). Coming online ends the streak."""

from __future__ import annotations

import logging

from vadmon.runtime.log_repeat import RepeatLog


class CameraLog:
    """Decides which of the capture process's per-attempt lines are worth writing."""

    def __init__(self, camera: str, logger: logging.Logger) -> None:
        self.key = f"camera {camera}"
        self.repeat = RepeatLog(logger)
        self._states_seen: set[str] = set()

    def quiet(self) -> bool:
        """True inside a failure streak: per-attempt detail ("connecting to …", the source
        error) has been said once already."""
        return self.repeat.failing(self.key)

    def disconnected(self, state: str, error: str, backoff_s: float) -> None:
        line = f"{self.key}: {state} ({error}); retry in {backoff_s:.1f} s"
        self.repeat.failed(self.key, error or state, line, backoff_s)

    def online(self) -> None:
        self.repeat.recovered(self.key)
        self._states_seen.clear()

    def state_line(self, state: str) -> bool:
        """Whether a state change is logged: always outside a streak, once per state in one."""
        if not self.quiet():
            self._states_seen.clear()
            return True
        if state in self._states_seen:
            return False
        self._states_seen.add(state)
        return True
