"""Capture side of the link's back-channel: hear what the inference host did with our snippets.

Before (issue 20, case 14) a capture host whose key spoke for another camera, or whose clock ran
an hour ahead, saw nothing wrong: its snippets left, counted as sent, and were dropped on the
far side. ``VerdictClient`` asks the inference host once a second (``hello`` for this camera on
a DEALER, a CURVE client of the configured server key) and reads its ``verdict``: a refusal is
logged once (then collapsed like every repeated failure, ``RepeatLog``), and the counts ride in
this process's heartbeat (``info.link``) to the dashboard row and ``/metrics``.

Never blocking, never queueing: the hello is sent only over a live session (IMMEDIATE) and
dropped otherwise; verdicts are read without waiting. A verdict that is malformed, oversized,
about another camera or over the rate is dropped and counted (``ignored``). libzmq cuts a peer
that sends more than ``SOCKET_MAX_BYTES`` and then never reconnects that endpoint; the
socket's monitor sees the cut and the endpoint is connected again (at most once a second), so
neither a bad message nor a restart of the inference host wedges the back-channel.
"""

from __future__ import annotations

import contextlib
import logging
import math
from collections import defaultdict, deque

import zmq
from zmq.utils.monitor import recv_monitor_message

from vadmon.runtime.link import LinkClient
from vadmon.runtime.link_verdict import (
    HELLO,
    HELLO_EVERY_S,
    MAX_VERDICT_BYTES,
    MAX_VERDICTS_PER_S,
    REASON_WORDS,
    SOCKET_MAX_BYTES,
    VERDICT,
    CaptureLink,
    Hello,
    Verdict,
    VerdictError,
    decode,
    encode,
)
from vadmon.runtime.log_repeat import RepeatLog
from vadmon.runtime.security import configure_curve_client, load_keypair, load_public_key

log = logging.getLogger("vadmon.capture.verdicts")

RECONNECT_EVERY_S = 1.0
READ_PER_POLL = 8


class VerdictClient:
    """One camera's view of its link; ``poll`` is called from the capture loop's thread."""

    def __init__(self, sock: zmq.Socket, endpoint: str, camera: str) -> None:
        self.sock = sock
        self.endpoint = endpoint
        self.camera = camera
        self.key = f"camera {camera}"
        self.monitor = sock.get_monitor_socket(zmq.EVENT_DISCONNECTED)
        self.repeat = RepeatLog(log)
        self.last = Verdict(camera=camera)
        self.verdicts = 0
        self.ignored: dict[str, int] = defaultdict(int)
        self.reconnects = 0
        self._hello_at = -math.inf
        self._cut_at: float | None = None  # when the monitor saw the session end
        self._reconnect_at = -math.inf
        self._taken: deque[float] = deque()  # when recent verdicts were taken (rate bound)

    def poll(self, now: float) -> None:
        """Reconnect a cut session, say hello when due, take the verdicts waiting now."""
        self._reconnect(now)
        if now - self._hello_at >= HELLO_EVERY_S:
            self._hello_at = now
            with contextlib.suppress(zmq.Again):  # no session (yet): nothing queues
                self.sock.send_multipart(encode(HELLO, Hello(camera=self.camera)), zmq.NOBLOCK)
        for _ in range(READ_PER_POLL):
            try:
                parts = self.sock.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                return
            self._take(parts, now)

    def _reconnect(self, now: float) -> None:
        while self.monitor.poll(0):
            if recv_monitor_message(self.monitor)["event"] == zmq.EVENT_DISCONNECTED:
                self._cut_at = now
        if self._cut_at is None or now - self._reconnect_at < RECONNECT_EVERY_S:
            return
        self._cut_at, self._reconnect_at = None, now
        with contextlib.suppress(zmq.ZMQError):
            self.sock.disconnect(self.endpoint)
        self.sock.connect(self.endpoint)
        self.reconnects += 1

    def _take(self, parts: list[bytes], now: float) -> None:
        try:
            verdict = decode(parts, VERDICT, Verdict, MAX_VERDICT_BYTES)
        except VerdictError as exc:
            return self._ignore(exc.kind)
        if verdict.camera != self.camera:
            return self._ignore("foreign")
        while self._taken and now - self._taken[0] > 1.0:
            self._taken.popleft()
        if len(self._taken) >= MAX_VERDICTS_PER_S:
            return self._ignore("rate")
        self._taken.append(now)
        self.verdicts += 1
        self._report(verdict)

    def _ignore(self, kind: str) -> None:
        self.ignored[kind] += 1
        self.repeat.failed(
            f"{self.key} verdicts",
            kind,
            f"{self.key}: dropped a link verdict from the inference host ({kind})",
        )

    def _report(self, verdict: Verdict) -> None:
        """Log new refusals (once, then collapsed); a recovery once the link accepts again."""
        prev = self.last
        if verdict.accepted < prev.accepted or any(
            verdict.refused.get(r, 0) < n for r, n in prev.refused.items()
        ):
            prev = Verdict(camera=self.camera)  # the inference process restarted: counts reset
        self.last = verdict
        new = {r: n - prev.refused.get(r, 0) for r, n in verdict.refused.items()}
        new = {r: n for r, n in new.items() if n > 0}
        if new:
            reason = verdict.last_reason if verdict.last_reason in new else max(new, key=new.get)
            line = (
                f"{self.key}: the inference host refused {verdict.refused[reason]} message(s) "
                f"({reason}): {REASON_WORDS.get(reason, reason)}"
            )
            self.repeat.failed(self.key, reason, line)
        elif verdict.accepted > prev.accepted:
            self.repeat.recovered(
                self.key, f"{self.key}: the inference host accepts this camera's messages again"
            )

    def body(self) -> dict[str, object]:
        """``info.link`` of the capture heartbeat (``CaptureLink``)."""
        return CaptureLink(
            accepted_total=float(self.last.accepted),
            refused={r: float(n) for r, n in self.last.refused.items()},
            last_reason=self.last.last_reason,
            verdicts_total=float(self.verdicts),
            ignored={k: float(n) for k, n in self.ignored.items()},
        ).model_dump()

    def close(self) -> None:
        with contextlib.suppress(zmq.ZMQError):
            self.sock.disable_monitor()
        self.monitor.close(linger=0)
        self.sock.close(linger=0)


def open_verdicts(ctx: zmq.Context, camera: str, link: LinkClient | None) -> VerdictClient | None:
    """The back-channel of ``link`` for ``camera`` (None without a tcp link). Keys were checked
    by ``open_client``; the DEALER trusts only ``link.server_public_file``'s key."""
    if link is None or link.verdicts is None:
        return None
    sock = ctx.socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 0)
    sock.setsockopt(zmq.IMMEDIATE, 1)  # no session, no queue: a hello is simply not sent
    sock.setsockopt(zmq.SNDHWM, 1)
    sock.setsockopt(zmq.RCVHWM, 4)
    sock.setsockopt(zmq.MAXMSGSIZE, SOCKET_MAX_BYTES)
    configure_curve_client(
        sock, load_keypair(link.secret_file), load_public_key(link.server_public_file)
    )
    sock.connect(link.verdicts)
    return VerdictClient(sock, link.verdicts, camera)
