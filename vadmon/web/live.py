"""What the web process knows live: newest preview JPEG, state and score per camera.

One thread holds one ZeroMQ SUB connected to every camera's capture PUB (topics ``preview`` and
``status``: the same PUB the alerts process takes previews from, and the capture heartbeat's
counters) and to inference's score PUB. A capture ``status`` message is the very heartbeat the
supervisor receives (capture publishes the same bytes), parsed by the same ``parse_heartbeat``
and fed to the dashboard's own ``DashboardState``, so a camera's state and reason here are
computed by exactly the dashboard's rules. Every message is decoded and validated
(``vadmon.runtime.messages``, ``runtime/status_schema``); unknown cameras are ignored, so a
peer cannot grow this.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

import zmq

from vadmon.dashboard.state import CameraView, DashboardState
from vadmon.runtime.heartbeat import TOPIC, Heartbeat, decode_published
from vadmon.runtime.messages import MessageError, PreviewFrame, ScoreMessage
from vadmon.runtime.status_schema import CaptureStatus
from vadmon.runtime.zmq_context import process_context

POLL_MS = 200


@dataclass(frozen=True)
class Frame:
    jpeg: bytes
    ts: float
    seq: int
    width: int
    height: int


class LiveFeed:
    """Thread-safe: the SUB thread writes, request handlers read ``frame``/``cameras``."""

    def __init__(
        self, cameras: tuple[str, ...], endpoints: tuple[str, ...], stale_after_s: float
    ) -> None:
        self.names = cameras
        self.endpoints = endpoints
        self.state = DashboardState(cameras, stale_after_s=stale_after_s)
        self._frames: dict[str, Frame] = {}
        self._scores: dict[str, tuple[float, float]] = {}  # camera → (score, t_end)
        self._cond = threading.Condition()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="vadmon-web-live", daemon=True)
        self.counters = {"previews": 0, "statuses": 0, "scores": 0, "malformed": 0}

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(2.0)

    def frame(self, camera: str) -> Frame | None:
        with self._cond:
            return self._frames.get(camera)

    def wait_frame(self, camera: str, after_seq: int, timeout_s: float) -> Frame | None:
        """The next frame newer than ``after_seq`` (or None at the timeout): the MJPEG pacing."""
        deadline = time.monotonic() + timeout_s
        with self._cond:
            while True:
                f = self._frames.get(camera)
                if f is not None and f.seq != after_seq:
                    return f
                left = deadline - time.monotonic()
                if left <= 0 or self._stop.is_set():
                    return None
                self._cond.wait(left)

    def cameras(self) -> list[dict[str, object]]:
        view = self.state.view()
        out = []
        for cam in view.cameras:
            frame = self.frame(cam.name)
            score = self._scores.get(cam.name)
            out.append(camera_json(cam, frame, score))
        return out

    def _run(self) -> None:
        sub = process_context().socket(zmq.SUB)
        sub.setsockopt(zmq.LINGER, 0)
        sub.setsockopt(zmq.RCVHWM, 64)
        sub.setsockopt(zmq.MAXMSGSIZE, 16 * 1024 * 1024)
        for topic in (PreviewFrame.topic, TOPIC, ScoreMessage.topic):
            sub.setsockopt(zmq.SUBSCRIBE, topic)
        for endpoint in dict.fromkeys(self.endpoints):
            sub.connect(endpoint)
        try:
            while not self._stop.is_set():
                if sub.poll(POLL_MS):
                    self._take(sub.recv_multipart())
        finally:
            sub.close(0)

    def _take(self, parts: list[bytes]) -> None:
        try:
            msg, payload = decode_published(parts)
        except MessageError:
            self.counters["malformed"] += 1
            return
        if isinstance(msg, PreviewFrame) and payload and msg.camera in self.names:
            self.counters["previews"] += 1
            with self._cond:
                self._frames[msg.camera] = Frame(payload, msg.ts, msg.seq, msg.width, msg.height)
                self._cond.notify_all()
        elif isinstance(msg, ScoreMessage) and msg.camera in self.names:
            self.counters["scores"] += 1
            self._scores[msg.camera] = (float(msg.score), float(msg.t_end))
        elif (
            isinstance(msg, Heartbeat)
            and isinstance(msg.body, CaptureStatus)
            and msg.body.camera in self.names
        ):
            self.counters["statuses"] += 1
            self.state.update_heartbeat(msg)


def camera_json(
    cam: CameraView, frame: Frame | None, score: tuple[float, float] | None
) -> dict[str, object]:
    reason = cam.reason
    if not reason and cam.state == "connecting":
        reason = "no status from its capture process yet"
    return {
        "name": cam.name,
        "state": cam.state,
        "reason": reason,
        "fps": cam.capture_fps,
        "resolution": cam.resolution,
        "reconnects": cam.reconnects_total,
        "last_frame_ts": frame.ts if frame else None,
        "score": round(score[0], 4) if score else None,
        "score_ts": score[1] if score else None,
    }
