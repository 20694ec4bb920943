"""CURVE refusals made visible on both hosts (issue 21: a capture host whose key was refused
logged exactly what a working one logs, and the inference host logged nothing).

Server: ``KeyGate`` is the ZAP credentials callback; it admits the allowed keys and logs each
refused public key once (a refused client retries every reconnect interval; a line per attempt
would flood the log). Public keys are not secrets; the line names the key so the operator can
find the host. Client: ``watch_refusals`` reads a socket monitor on the link socket in a small
thread and logs one ERROR when the server refuses this host's key (again only after a success).
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path

import zmq
from zmq.utils.monitor import recv_monitor_message

log = logging.getLogger("vadmon.link")


class KeyGate:
    """ZAP callback: ``callback(domain, z85_key) -> bool``; called on pyzmq's auth thread."""

    def __init__(self, allowed: list[bytes], allowed_dir: Path) -> None:
        self.allowed = frozenset(allowed)
        self.allowed_dir = allowed_dir
        self.refused: set[bytes] = set()
        self._lock = threading.Lock()

    def callback(self, domain: str, key: bytes) -> bool:
        if key in self.allowed:
            return True
        with self._lock:
            first = key not in self.refused
            self.refused.add(key)
        if first:
            log.warning(
                "refused a capture host's CURVE key %s (not in %s); copy that host's NAME.key "
                "there to admit it (logged once per key)",
                key.decode("ascii", "replace"),
                self.allowed_dir,
            )
        return False


_EVENTS = (
    zmq.EVENT_HANDSHAKE_FAILED_AUTH | zmq.EVENT_HANDSHAKE_SUCCEEDED | zmq.EVENT_MONITOR_STOPPED
)


def watch_refusals(sock: zmq.Socket, endpoint: str, public_key_file: Path) -> threading.Thread:
    """Start a daemon thread that logs the server's refusal of our key; it ends when ``sock``
    closes (libzmq then sends MONITOR_STOPPED). Call from the thread that owns ``sock``."""
    monitor = sock.get_monitor_socket(_EVENTS)
    thread = threading.Thread(
        target=_watch, args=(monitor, endpoint, public_key_file), name="vadmon-link-auth",
        daemon=True,
    )  # fmt: skip
    thread.start()
    return thread


def _watch(monitor: zmq.Socket, endpoint: str, public_key_file: Path) -> None:
    said = False
    try:
        while True:
            try:
                event = recv_monitor_message(monitor)["event"]
            except zmq.ZMQError:  # context terminated under us
                return
            if event == zmq.EVENT_MONITOR_STOPPED:
                return
            if event == zmq.EVENT_HANDSHAKE_SUCCEEDED:
                said = False
            elif event == zmq.EVENT_HANDSHAKE_FAILED_AUTH and not said:
                said = True
                log.error(
                    "inference host refused this host's CURVE key %s at %s: copy that file "
                    "into the inference host's allowed_clients_dir; nothing is sent until then",
                    public_key_file, endpoint,
                )  # fmt: skip
    finally:
        monitor.close(linger=0)
