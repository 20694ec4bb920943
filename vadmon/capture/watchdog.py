"""Per-camera watchdog: a small explicit state machine driven by the capture loop.

    connecting ──first frame──▶ online ──no frame for stall_timeout──▶ stalled
        ▲  │                      │ frozen image / resolution change        │
        │  └──error / timeout──▶ offline ◀──────────────────────────────────┘ (attempt fails)
        └────────── backoff elapsed (stalled or offline) ───────────────────┘

The watchdog never touches the camera itself: it receives events (``on_frame``, ``on_error``)
and the current time, and answers with an ``Action`` (connect or disconnect). That keeps every
policy here — full-jitter exponential backoff capped at ``backoff_max_s``, stall timeout,
frozen-image detection, never giving up — testable without a camera or a clock.
"""

from __future__ import annotations

import random
from collections import deque
from dataclasses import dataclass, field
from enum import Enum, StrEnum

import cv2
import numpy as np

from vadmon.runtime.backoff import backoff_delay


class CameraState(StrEnum):
    """The one camera-state vocabulary: the watchdog enters these, the capture heartbeat
    carries them (``status_schema.CaptureStatus.state``), the dashboard shows them."""

    CONNECTING = "connecting"
    ONLINE = "online"
    STALLED = "stalled"
    OFFLINE = "offline"
    ENDED = "ended"  # a file played to its end with ``loop: false``: never reconnected


class Action(Enum):
    NONE = "none"
    CONNECT = "connect"  # open the source now
    DISCONNECT = "disconnect"  # close the source; a CONNECT follows after the backoff


@dataclass(frozen=True)
class WatchdogSettings:
    stall_timeout_s: float
    connect_timeout_s: float
    backoff_initial_s: float
    backoff_max_s: float
    frozen_timeout_s: float  # 0 disables frozen-image detection
    frozen_tolerance: float  # mean abs difference of 32x32 thumbnails counted as "same"
    frozen_check_s: float  # a thumbnail at most this often (0.5 ms each at 640x360, not per frame)


@dataclass
class WatchdogCounters:
    connects: int = 0
    reconnects: int = 0
    stalls: int = 0
    frozen: int = 0
    resolution_changes: int = 0
    errors: dict[str, int] = field(default_factory=dict)
    last_error: str = ""


def fingerprint(frame: np.ndarray) -> np.ndarray:
    """A 32x32 grey thumbnail: cheap, and robust to compression noise on a frozen picture."""
    grey = frame if frame.ndim == 2 else cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)
    return cv2.resize(grey, (32, 32), interpolation=cv2.INTER_AREA).astype(np.float32)


class Watchdog:
    def __init__(self, settings: WatchdogSettings, rng: random.Random | None = None) -> None:
        self.settings = settings
        self.rng = rng or random.Random()
        self.state = CameraState.OFFLINE
        self.counters = WatchdogCounters()
        self.next_attempt_at = 0.0
        self.last_backoff_s = 0.0
        self._attempt = 0  # consecutive failures, reset once frames flow
        self._attempt_started = 0.0
        self._last_frame_at = 0.0
        self._shape: tuple[int, ...] | None = None
        self._still_print: np.ndarray | None = None
        self._still_since = 0.0
        self._thumb_at = float("-inf")
        self._stall_times: deque[float] = deque()

    # -- events ------------------------------------------------------------------------------

    def start(self, now: float) -> Action:
        return self._connect(now)

    def on_frame(self, now: float, shape: tuple[int, ...], thumb: np.ndarray | None) -> Action:
        if self.state is not CameraState.ONLINE:
            if self.state is not CameraState.CONNECTING:
                return Action.NONE  # a late frame from a source we already gave up on
            self.state = CameraState.ONLINE
            self._attempt = 0
            self._shape = shape
            self._still_print, self._still_since = thumb, now
        self._last_frame_at = now
        if shape != self._shape:
            self.counters.resolution_changes += 1
            return self._fail(now, "resolution", CameraState.OFFLINE)
        if self._is_frozen(now, thumb):
            self.counters.frozen += 1
            return self._fail(now, "frozen", CameraState.STALLED)
        return Action.NONE

    def end(self) -> None:
        """The source finished for good (end of file, no loop): no more reconnects."""
        self.state = CameraState.ENDED
        self.counters.last_error = "ended"

    def on_error(self, now: float, kind: str) -> Action:
        if self.state not in (CameraState.CONNECTING, CameraState.ONLINE):
            return Action.NONE
        return self._fail(now, kind, CameraState.OFFLINE)

    def tick(self, now: float) -> Action:
        """Time-driven transitions; call often (every loop iteration)."""
        if self.state is CameraState.CONNECTING:
            if now - self._attempt_started > self.settings.connect_timeout_s:
                return self._fail(now, "timeout", CameraState.OFFLINE)
        elif self.state is CameraState.ONLINE:
            if now - self._last_frame_at > self.settings.stall_timeout_s:
                self.counters.stalls += 1
                self._stall_times.append(now)
                return self._fail(now, "stall", CameraState.STALLED)
        elif self.state is not CameraState.ENDED and now >= self.next_attempt_at:
            return self._connect(now)
        return Action.NONE

    # -- queries -----------------------------------------------------------------------------

    def wants_thumb(self, now: float) -> bool:
        """Whether the frame arriving ``now`` should bring a fingerprint: frozen detection
        compares pictures seconds apart, so one every ``frozen_check_s`` finds a freeze as
        surely as one per frame (at most that much later) for a fraction of the CPU."""
        s = self.settings
        return s.frozen_timeout_s > 0 and now - self._thumb_at >= s.frozen_check_s

    def stalls_last_hour(self, now: float) -> int:
        while self._stall_times and now - self._stall_times[0] > 3600:
            self._stall_times.popleft()
        return len(self._stall_times)

    def backoff_delay(self) -> float:
        """Full jitter (``runtime/backoff.py``): spreads a thundering herd of cameras."""
        self._attempt += 1
        s = self.settings
        return backoff_delay(self._attempt, s.backoff_initial_s, s.backoff_max_s, self.rng, "full")

    # -- internals ---------------------------------------------------------------------------

    def _connect(self, now: float) -> Action:
        if self.counters.connects:
            self.counters.reconnects += 1
        self.counters.connects += 1
        self.state = CameraState.CONNECTING
        self._attempt_started = now
        return Action.CONNECT

    def _fail(self, now: float, kind: str, state: CameraState) -> Action:
        self.counters.errors[kind] = self.counters.errors.get(kind, 0) + 1
        self.counters.last_error = kind
        self.state = state
        self.last_backoff_s = self.backoff_delay()
        self.next_attempt_at = now + self.last_backoff_s
        return Action.DISCONNECT

    def _is_frozen(self, now: float, thumb: np.ndarray | None) -> bool:
        if self.settings.frozen_timeout_s <= 0 or thumb is None:
            return False
        self._thumb_at = now
        if (
            self._still_print is None
            or float(np.abs(thumb - self._still_print).mean()) > self.settings.frozen_tolerance
        ):
            self._still_print, self._still_since = thumb, now
            return False
        return now - self._still_since >= self.settings.frozen_timeout_s
