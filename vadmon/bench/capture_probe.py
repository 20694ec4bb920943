"""What ``bench capture`` measures with: thread CPU from ``/proc``, a consumer, a decode child.

- ``thread_cpu(pid)``: user + system seconds per thread of a process (``/proc/<pid>/task``),
  split into the capture loop (the main thread) and everything else (the source reader and the
  decoder's own threads), so a figure says which side of the process got cheaper.
- ``Consumer``: connects to every camera's sockets as inference and alerts do (PULL snippets,
  SUB preview + status): an unread snippet socket would make capture hold and copy frames,
  which is not the steady state. It keeps the last ``frames_total`` each camera reported.
- ``python -m vadmon.bench.capture_probe VIDEO SECONDS``: the floor, ``VideoCapture.read()``
  paced at the file's fps in a process of its own; prints one JSON line (CPU s, frames).
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import zmq

from vadmon.capture.setup import capture_endpoints
from vadmon.runtime.heartbeat import Heartbeat, decode_published
from vadmon.runtime.messages import MessageError
from vadmon.runtime.status_schema import CaptureStatus
from vadmon.runtime.transport import puller, subscriber

TICK = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class ThreadCpu:
    main_s: float  # the capture loop
    other_s: float  # source reader + decoder threads + ZeroMQ I/O

    @property
    def total_s(self) -> float:
        return self.main_s + self.other_s

    def minus(self, earlier: ThreadCpu) -> ThreadCpu:
        return ThreadCpu(self.main_s - earlier.main_s, self.other_s - earlier.other_s)


def thread_cpu(pid: int) -> ThreadCpu:
    """CPU seconds so far of ``pid``'s live threads (a thread that ended is not counted)."""
    main = other = 0.0
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # the thread ended between listing and reading
        seconds = (int(fields[11]) + int(fields[12])) / TICK  # utime + stime
        if task.name == str(pid):
            main += seconds
        else:
            other += seconds
    return ThreadCpu(main, other)


@dataclass
class Consumer:
    """Reads every camera's snippets, previews and status beats on a thread of its own."""

    directory: Path
    cameras: list[str]
    frames: dict[str, int] = field(default_factory=dict)
    online: set[str] = field(default_factory=set)
    snippets: int = 0
    previews: int = 0

    def __post_init__(self) -> None:
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, daemon=True, name="bench-consumer")

    def __enter__(self) -> Consumer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def frames_total(self) -> int:
        with self._lock:
            return sum(self.frames.values())

    def all_online(self) -> bool:
        with self._lock:
            return self.online >= set(self.cameras)

    def _run(self) -> None:
        ctx = zmq.Context()
        poller = zmq.Poller()
        for camera in self.cameras:
            endpoints = capture_endpoints(self.directory, camera)
            poller.register(subscriber(ctx, endpoints.publish), zmq.POLLIN)
            poller.register(puller(ctx, endpoints.snippets), zmq.POLLIN)
        try:
            while not self._stop.is_set():
                for sock, _ in poller.poll(100):
                    self._receive(sock)
        finally:
            ctx.destroy(linger=0)

    def _receive(self, sock: zmq.Socket) -> None:
        parts = sock.recv_multipart()
        if sock.socket_type == zmq.PULL:
            self.snippets += 1
            return
        try:
            msg, _ = decode_published(parts)
        except MessageError:
            return
        if isinstance(msg, Heartbeat) and isinstance(msg.body, CaptureStatus):
            with self._lock:
                self.frames[msg.body.camera] = msg.body.counters.frames_total
                if msg.body.state == "online":
                    self.online.add(msg.body.camera)
        else:
            self.previews += 1


def decode_only(video: str, seconds: float) -> dict[str, float]:
    """``read()`` paced at the file's fps (looping), as a file camera's reader does, nothing
    else: the cost a capture process cannot go below."""
    import cv2

    cv2.setNumThreads(1)
    cap = cv2.VideoCapture(video, cv2.CAP_FFMPEG)
    period = 1.0 / (cap.get(cv2.CAP_PROP_FPS) or 25.0)
    frames = 0
    cpu0, start = time.process_time(), time.monotonic()
    due = start
    while time.monotonic() - start < seconds:
        ok, _frame = cap.read()
        if not ok:
            cap.set(cv2.CAP_PROP_POS_FRAMES, 0)
            continue
        frames += 1
        due += period
        time.sleep(max(0.0, due - time.monotonic()))
    return {"cpu_s": time.process_time() - cpu0, "frames": frames}


if __name__ == "__main__":
    print(json.dumps(decode_only(sys.argv[1], float(sys.argv[2]))))
