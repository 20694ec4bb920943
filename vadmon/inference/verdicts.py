"""Inference side of the link's back-channel: tell each capture host what became of its messages.

``VerdictBook`` tallies, per sending client key and camera, the link messages (snippets and
previews) that passed ``LinkServer.admit`` and those refused, by reason. ``VerdictServer``
answers each authenticated ``hello`` with the verdict for that connection's key and the camera
it names (see ``vadmon.runtime.link_verdict`` for the protocol and why a ROUTER).

Bounded state: keys are those ZAP admits (capped anyway at ``MAX_KEYS``), cameras only the
configured ones (messages naming others are one counter per key), entries capped at
``MAX_ENTRIES``; a step answers at most ``MAX_HELLOS_PER_STEP`` hellos and a connection at
most one verdict per ``ANSWER_EVERY_S``. The ROUTER never blocks: a verdict for a connection
whose queue is full, or that has gone, is dropped by libzmq. A bind failure costs only the
back-channel (one line); snippets keep flowing.
"""

from __future__ import annotations

import logging
import math
import time
from collections import defaultdict
from dataclasses import dataclass, field

import zmq

from vadmon.errors import VadmonError
from vadmon.runtime.link import LinkServer
from vadmon.runtime.link_verdict import (
    ANSWER_EVERY_S,
    HELLO,
    MAX_HELLO_BYTES,
    REASONS,
    VERDICT,
    Hello,
    Verdict,
    VerdictError,
    decode,
    encode,
)
from vadmon.runtime.messages import PreviewFrame, SnippetMessage
from vadmon.runtime.security import configure_curve_server, load_keypair
from vadmon.runtime.transport import bind

log = logging.getLogger("vadmon.inference.verdicts")

MAX_KEYS = 1024
MAX_ENTRIES = 65536
MAX_HELLOS_PER_STEP = 64
MAX_CONNECTIONS = 4096  # routing ids remembered for the per-connection answer rate


@dataclass
class Tally:
    accepted: int = 0
    refused: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    last_reason: str = ""


class VerdictBook:
    """What the link did with each key's messages, per configured camera."""

    def __init__(self, cameras: frozenset[str]) -> None:
        self.cameras = cameras
        self._tally: dict[tuple[str, str], Tally] = {}
        self._unknown: dict[str, int] = {}  # key → messages naming a camera we do not have
        self.untracked = 0  # messages past the caps (counted, not kept)

    def note(self, peer: str, msg: object, reason: str | None) -> None:
        """One link message from key ``peer``: accepted (``reason`` None) or refused."""
        if not peer or not isinstance(msg, SnippetMessage | PreviewFrame):
            return
        if msg.camera not in self.cameras:
            if peer in self._unknown or len(self._unknown) < MAX_KEYS:
                self._unknown[peer] = self._unknown.get(peer, 0) + 1
            else:
                self.untracked += 1
            return
        tally = self._tally.get((peer, msg.camera))
        if tally is None:
            if len(self._tally) >= MAX_ENTRIES:
                self.untracked += 1
                return
            tally = self._tally[(peer, msg.camera)] = Tally()
        if reason is None:
            tally.accepted += 1
        elif reason in REASONS:  # the wire knows these; a new one must be added there first
            tally.refused[reason] += 1
            tally.last_reason = reason

    def verdict(self, peer: str, camera: str) -> Verdict:
        """Only what ``peer`` itself sent: no key learns about another key's messages."""
        if camera not in self.cameras:
            n = self._unknown.get(peer, 0)
            refused = {"unknown_camera": n} if n else {}
            return Verdict(
                camera=camera, refused=refused, last_reason="unknown_camera" if n else ""
            )
        tally = self._tally.get((peer, camera)) or Tally()
        return Verdict(
            camera=camera,
            accepted=tally.accepted,
            refused=dict(tally.refused),
            last_reason=tally.last_reason,
        )


class VerdictServer:
    """The ROUTER that answers hellos; ``serve`` is called from the inference loop's thread."""

    def __init__(self, sock: zmq.Socket | None, book: VerdictBook) -> None:
        self.sock = sock
        self.book = book
        self._answered: dict[bytes, float] = {}  # routing id → when we last answered it
        self.counters = {"verdicts_sent": 0, "hellos_dropped": 0}

    def note(self, peer: str, msg: object, reason: str | None) -> None:
        self.book.note(peer, msg, reason)

    def serve(self, now: float | None = None) -> int:
        """Answer the hellos waiting now (never blocks); returns how many were answered."""
        if self.sock is None:
            return 0
        now = time.monotonic() if now is None else now
        sent = 0
        for _ in range(MAX_HELLOS_PER_STEP):
            try:
                parts = self.sock.recv_multipart(zmq.NOBLOCK, copy=False)
            except zmq.Again:
                break
            sent += self._answer(parts, now)
        return sent

    def _answer(self, parts: list[zmq.Frame], now: float) -> int:
        try:
            peer = parts[1].get("User-Id") if len(parts) > 1 else ""
            hello = decode([p.bytes for p in parts[1:]], HELLO, Hello, MAX_HELLO_BYTES)
        except (VerdictError, zmq.ZMQError):
            self.counters["hellos_dropped"] += 1
            return 0
        rid = parts[0].bytes
        if not peer or now - self._answered.get(rid, -math.inf) < ANSWER_EVERY_S:
            self.counters["hellos_dropped"] += 1
            return 0
        if len(self._answered) >= MAX_CONNECTIONS:  # old connections: forget them all
            self._answered.clear()
        self._answered[rid] = now
        verdict = self.book.verdict(peer, hello.camera)
        try:
            self.sock.send_multipart([rid, *encode(VERDICT, verdict)], zmq.NOBLOCK)
        except zmq.ZMQError:  # the connection's queue is full or it has gone: next hello
            return 0
        self.counters["verdicts_sent"] += 1
        return 1

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close(linger=0)
            self.sock = None


def open_verdicts(
    ctx: zmq.Context, link: LinkServer | None, cameras: frozenset[str]
) -> VerdictServer:
    """The back-channel of ``link`` (one that does nothing without a tcp link). Call after
    ``open_server``: the ROUTER is a CURVE server in the same context, so the link's ZAP gate
    admits exactly its clients."""
    book = VerdictBook(cameras)
    if link is None or link.verdict_bind is None:
        return VerdictServer(None, book)
    sock = ctx.socket(zmq.ROUTER)
    sock.setsockopt(zmq.LINGER, 0)
    sock.setsockopt(zmq.RCVHWM, 64)
    sock.setsockopt(zmq.SNDHWM, 4)
    sock.setsockopt(zmq.MAXMSGSIZE, 2 * MAX_HELLO_BYTES)
    configure_curve_server(sock, load_keypair(link.secret_file))
    try:
        bind(sock, link.verdict_bind)
    except VadmonError as exc:
        sock.close(linger=0)
        log.warning(
            "link verdicts: %s at %s; capture hosts will not see their refusals (snippets are "
            "not affected): free that port or set transport.tcp.verdicts.bind",
            exc.what,
            link.verdict_bind,
        )
        return VerdictServer(None, book)
    log.info("link verdicts: answering capture hosts on %s", link.verdict_bind)
    return VerdictServer(sock, book)
