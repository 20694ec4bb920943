"""Application heartbeats from child processes to the supervisor.

libzmq's own heartbeats only prove that the peer's I/O thread is alive; a process whose main
loop is wedged (deadlock, SIGSTOP, a stuck CUDA call) still answers them. So every child's
main loop sends a small ``status`` message itself; the supervisor kills a child that stays
silent for ``heartbeat_timeout_s``. Wire format: ZeroMQ multipart ``[b"status", JSON]`` with
at least ``{"process": name, "ts": unix_s, "pid": pid}`` (the ``Status`` message's fields).
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from dataclasses import dataclass
from typing import Any

import zmq

ENV_ENDPOINT = "VADMON_HEARTBEAT_ENDPOINT"
ENV_NAME = "VADMON_PROCESS_NAME"
TOPIC = b"status"
MAX_BYTES = 64 * 1024


@dataclass(frozen=True)
class Heartbeat:
    process: str
    ts: float
    pid: int | None
    fields: dict[str, Any]


def parse_heartbeat(frames: list[bytes]) -> Heartbeat | None:
    """Decode ``[topic, json]`` or ``[json]``; None for anything malformed (never raises)."""
    if len(frames) == 2 and frames[0] == TOPIC:
        payload = frames[1]
    elif len(frames) == 1:
        payload = frames[0]
    else:
        return None
    if len(payload) > MAX_BYTES:
        return None
    try:
        data = json.loads(payload)
    except (ValueError, UnicodeDecodeError):
        return None
    if not isinstance(data, dict) or not isinstance(data.get("process"), str):
        return None
    ts, pid = data.get("ts", time.time()), data.get("pid")
    if not isinstance(ts, int | float) or isinstance(ts, bool):
        return None
    if pid is not None and (not isinstance(pid, int) or isinstance(pid, bool)):
        return None
    return Heartbeat(process=data["process"], ts=float(ts), pid=pid, fields=data)


class HeartbeatSender:
    """Child side: ``beat()`` from the main loop; never blocks (drops when nobody listens)."""

    def __init__(self, endpoint: str, name: str, context: zmq.Context | None = None) -> None:
        self.name = name
        self._context = context or zmq.Context.instance()
        self._socket = self._context.socket(zmq.PUSH)
        self._socket.setsockopt(zmq.LINGER, 0)
        self._socket.setsockopt(zmq.SNDHWM, 4)
        self._socket.setsockopt(zmq.IMMEDIATE, 1)
        self._socket.connect(endpoint)

    @classmethod
    def from_env(cls, context: zmq.Context | None = None) -> HeartbeatSender | None:
        """The sender the supervisor asked for via environment, or None when unsupervised."""
        endpoint, name = os.environ.get(ENV_ENDPOINT), os.environ.get(ENV_NAME)
        if not endpoint or not name:
            return None
        return cls(endpoint, name, context)

    def beat(self, **fields: Any) -> bool:
        """Send one heartbeat; extra fields (state, counters, camera) ride along."""
        body = {"process": self.name, "ts": time.time(), "pid": os.getpid(), **fields}
        try:
            self._socket.send_multipart([TOPIC, json.dumps(body).encode()], zmq.NOBLOCK)
        except zmq.Again:
            return False
        return True

    def close(self) -> None:
        self._socket.close(linger=0)


def report_fatal(line: str, wait_s: float = 1.0) -> None:
    """A supervised child about to exit on bad input sends one last heartbeat saying why
    (``state: failed`` + ``error``): the supervisor shows that line as the child's reason
    instead of a bare "exit code 2". Waits at most ``wait_s`` for the message to leave."""
    endpoint, name = os.environ.get(ENV_ENDPOINT), os.environ.get(ENV_NAME)
    if not endpoint or not name:
        return
    ctx = zmq.Context()
    sock = ctx.socket(zmq.PUSH)  # no IMMEDIATE: queued until connected, kept for LINGER
    sock.setsockopt(zmq.LINGER, int(wait_s * 1000))
    sock.connect(endpoint)
    body = {"process": name, "ts": time.time(), "pid": os.getpid(), "state": "failed"}
    body["error"] = line[:500]
    with contextlib.suppress(zmq.Again):
        sock.send_multipart([TOPIC, json.dumps(body).encode()], zmq.NOBLOCK)
    sock.close()
    ctx.term()
