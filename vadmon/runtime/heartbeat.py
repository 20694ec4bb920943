"""Application heartbeats from child processes to the supervisor.

libzmq's own heartbeats only prove that the peer's I/O thread is alive; a process whose main
loop is wedged (deadlock, SIGSTOP, a stuck CUDA call) still answers them. So every child's
main loop sends a small ``status`` message itself; the supervisor kills a child that stays
silent for ``heartbeat_timeout_s``. Wire format: ZeroMQ multipart ``[b"status", JSON]`` with
at least ``{"process": name, "ts": unix_s, "pid": pid}``; the rest is the process's status body
(``vadmon.runtime.status_schema``), validated here and nowhere else.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import zmq
from pydantic import ValidationError

from vadmon.runtime.messages import Message, MessageError, decode
from vadmon.runtime.status_schema import Body, body_model
from vadmon.runtime.transport import bind
from vadmon.runtime.zmq_context import process_context

ENV_ENDPOINT = "VADMON_HEARTBEAT_ENDPOINT"
ENV_NAME = "VADMON_PROCESS_NAME"
TOPIC = b"status"
MAX_BYTES = 64 * 1024
MAX_NAME = 80
log = logging.getLogger("vadmon.runtime.heartbeat")


@dataclass(frozen=True)
class Heartbeat:
    """One validated heartbeat. ``body`` is the typed status for capture/inference/alerts
    processes, None for other children or when the body failed validation (``problem`` says why:
    the sender is still alive, but none of its numbers are trusted)."""

    process: str
    ts: float
    pid: int
    body: Body | None = None
    problem: str = ""
    fatal: str = ""  # the one error line of a child about to exit on bad input (report_fatal)


def parse_heartbeat(frames: list[bytes]) -> Heartbeat | None:
    """Decode and validate ``[topic, json]`` or ``[json]``: None when the envelope is unusable
    (not JSON, no process name, no integer pid); never raises."""
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
    except (ValueError, UnicodeDecodeError, RecursionError):
        return None
    if not isinstance(data, dict):
        return None
    process, ts, pid = data.get("process"), data.get("ts"), data.get("pid")
    if not isinstance(process, str) or not 0 < len(process) <= MAX_NAME:
        return None
    if isinstance(ts, bool) or not isinstance(ts, int | float) or not math.isfinite(ts):
        return None
    if isinstance(pid, bool) or not isinstance(pid, int) or pid <= 0:
        return None  # a beat without a pid cannot prove that the supervised child is alive
    error = data.get("error")
    if data.get("state") == "failed" and isinstance(error, str):
        return Heartbeat(process, float(ts), pid, fatal=error[:300])
    model = body_model(process)
    if model is None:
        return Heartbeat(process, float(ts), pid)
    try:
        body = model.model_validate(data)
    except ValidationError as exc:
        return Heartbeat(process, float(ts), pid, problem=_first_error(exc))
    return Heartbeat(process, float(ts), pid, body)


def encode(process: str, body: Body | None = None, **fields: Any) -> bytes:
    """The wire JSON of one beat: envelope + body. Capture also publishes these bytes on its
    ``status`` topic, so every reader parses one shape with ``parse_heartbeat``."""
    data = body.model_dump(mode="json", exclude_none=True) if body is not None else {}
    envelope = {"process": process, "ts": time.time(), "pid": os.getpid()}
    return json.dumps({**envelope, **data, **fields}).encode()


def _first_error(exc: ValidationError) -> str:
    first = exc.errors()[0]
    where = ".".join(str(p) for p in first["loc"]) or "body"
    return f"{where}: {first['msg']}"[:200]


def decode_published(parts: list[bytes]) -> tuple[Message | Heartbeat, bytes | None]:
    """A message off a PUB that also carries ``status`` beats (capture's): the beat parsed as
    the supervisor parses it, anything else by ``messages.decode``; raises ``MessageError``."""
    if parts and bytes(parts[0]) == TOPIC:
        beat = parse_heartbeat([bytes(p) for p in parts])
        if beat is None or beat.problem:
            raise MessageError(f"status beat rejected: {beat.problem if beat else 'envelope'}")
        return beat, None
    return decode(parts)


class HeartbeatSender:
    """Child side: ``beat()`` from the main loop; never blocks (drops when nobody listens)."""

    def __init__(self, endpoint: str, name: str) -> None:
        self.name = name
        self._socket = process_context().socket(zmq.PUSH)
        self._socket.setsockopt(zmq.LINGER, 0)
        self._socket.setsockopt(zmq.SNDHWM, 4)
        self._socket.setsockopt(zmq.IMMEDIATE, 1)
        self._socket.connect(endpoint)
        self._last_problem = ""

    @classmethod
    def from_env(cls) -> HeartbeatSender | None:
        """The sender the supervisor asked for via environment, or None when unsupervised."""
        endpoint, name = os.environ.get(ENV_ENDPOINT), os.environ.get(ENV_NAME)
        if not endpoint or not name:
            return None
        return cls(endpoint, name)

    def beat(self, body: Body | None = None, **fields: Any) -> bool:
        """Send one heartbeat: the child's typed ``body`` as is (loose ``fields`` only for
        senders without a schema, e.g. test children and the demo feed)."""
        try:
            self._socket.send_multipart([TOPIC, encode(self.name, body, **fields)], zmq.NOBLOCK)
        except zmq.Again:
            return False
        return True

    def beat_built(self, build: Callable[[], Body]) -> bool:
        """Beat with the body ``build`` makes; when the child's own numbers do not fit its
        schema, log why (once per distinct reason) and still beat without them: a liveness
        beat must never be what a bad counter costs."""
        try:
            body: Body | None = build()
        except ValidationError as exc:
            reason = _first_error(exc)
            if reason != self._last_problem:
                log.warning("%s: status body left out (%s)", self.name, reason)
            self._last_problem, body = reason, None
        return self.beat(body)

    def close(self) -> None:
        self._socket.close(linger=0)


class HeartbeatReceiver:
    """Supervisor side: a bound PULL, size-capped; ``receive`` drains what arrived, parsed and
    validated, and counts what could not be parsed in ``malformed``."""

    def __init__(self, endpoint: str) -> None:
        self._pull = process_context().socket(zmq.PULL)
        self._pull.setsockopt(zmq.LINGER, 0)
        self._pull.setsockopt(zmq.MAXMSGSIZE, MAX_BYTES)
        self._pull.setsockopt(zmq.RCVHWM, 1000)
        bind(self._pull, endpoint)  # refuses an endpoint a live process serves: never steal it
        self.malformed = 0

    def receive(self, timeout_s: float) -> list[Heartbeat]:
        beats: list[Heartbeat] = []
        if not self._pull.poll(int(timeout_s * 1000)):
            return beats
        while True:
            try:
                frames = self._pull.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                return beats
            beat = parse_heartbeat(frames)
            if beat is None:
                self.malformed += 1
            else:
                beats.append(beat)

    def close(self) -> None:
        if not self._pull.closed:
            self._pull.close(linger=0)


def report_fatal(line: str, wait_s: float = 1.0) -> None:
    """A supervised child about to exit on bad input sends one last heartbeat saying why
    (``state: failed`` + ``error``): the supervisor shows that line as the child's reason
    instead of a bare "exit code 2". Waits at most ``wait_s`` for the message to leave."""
    endpoint, name = os.environ.get(ENV_ENDPOINT), os.environ.get(ENV_NAME)
    if not endpoint or not name:
        return
    # no IMMEDIATE: queued until connected; its LINGER keeps it until the entry closes the
    # context (``close_process_context`` waits for it)
    sock = process_context().socket(zmq.PUSH)
    sock.setsockopt(zmq.LINGER, int(wait_s * 1000))
    sock.connect(endpoint)
    body = {"process": name, "ts": time.time(), "pid": os.getpid(), "state": "failed"}
    body["error"] = line[:500]
    with contextlib.suppress(zmq.Again):
        sock.send_multipart([TOPIC, json.dumps(body).encode()], zmq.NOBLOCK)
    sock.close()
