"""ZeroMQ socket helpers with the safety limits every vadmon link needs.

- ipc socket files are 0600 (in a 0700 directory when vadmon makes it), and binding refuses an
  endpoint that another live process already serves (libzmq would silently steal the file).
- Every socket has bounded high-water marks and LINGER, so a dead peer can neither grow memory
  nor hold shutdown hostage; receivers cap the message size (MAXMSGSIZE).
- ``recv_message`` decodes with ``vadmon.runtime.messages.decode`` and counts malformed messages instead
  of raising: a hostile or buggy peer cannot crash a receiver.
- tcp:// links can use CURVE: the server checks client keys against an allow-list directory
  through a ZAP authenticator, so unknown keys and plaintext peers are refused.
"""

from __future__ import annotations

import contextlib
import os
import stat
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import zmq
from zmq.utils.monitor import recv_monitor_message

from vadmon.errors import VadmonError
from vadmon.runtime.cleanup import socket_is_live
from vadmon.runtime.messages import (
    MAX_HEADER_BYTES,
    MAX_PAYLOAD_BYTES,
    TOPICS,
    Message,
    MessageError,
    decode,
)
from vadmon.runtime.security import (
    configure_curve_client,
    configure_curve_server,
    load_keypair,
    load_public_key,
)

DEFAULT_HWM = 8
DEFAULT_LINGER_MS = 200
DEFAULT_MAX_MSG_BYTES = MAX_PAYLOAD_BYTES + MAX_HEADER_BYTES
IPC_PATH_MAX = 100  # sun_path is 108 bytes on Linux, minus "ipc://" slack


# --- ipc directory and endpoints -------------------------------------------------------------


def default_ipc_dir() -> Path:
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    base = Path(runtime) if runtime and Path(runtime).is_dir() else Path("/tmp")
    return base / f"vadmon-{os.getuid()}"


def ipc_dir(path: str | Path | None = None) -> Path:
    """Create (or check) the directory for ipc sockets: owned by us, new ones mode 0700."""
    return make_ipc_dir(path)[0]


def make_ipc_dir(path: str | Path | None = None) -> tuple[Path, bool]:
    """``(directory, created)``: create the ipc directory 0700, or check an existing one.

    An existing directory is used as it is, never chmodded: it may be the user's own folder
    (even ``storage.dir``). Access is guarded per socket instead: ``bind`` makes each socket
    file 0600, as anyone who can open it could inject messages. ``created`` tells the caller
    whether the directory is its own to remove at exit.
    """
    directory = Path(path) if path else default_ipc_dir()
    created = False
    try:
        if not directory.exists():
            directory.mkdir(mode=0o700, parents=True)
            created = True
    except FileExistsError:
        pass  # another process made it in the meantime: not ours
    except (NotADirectoryError, PermissionError, OSError) as exc:
        raise VadmonError(
            f"cannot create ipc directory ({exc.strerror})",
            str(directory),
            "set another transport.ipc_dir in the config",
        ) from None
    info = directory.lstat()
    if not stat.S_ISDIR(info.st_mode):
        raise VadmonError(
            "ipc path is not a directory",
            str(directory),
            "set another transport.ipc_dir in the config",
        )
    if info.st_uid != os.getuid():
        raise VadmonError(
            "ipc directory is owned by another user",
            str(directory),
            "set another transport.ipc_dir in the config",
        )
    return directory, created


def ipc_endpoint(directory: str | Path, name: str) -> str:
    """``ipc://<dir>/<name>.sock`` with a name safe for a file system path."""
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in name)
    path = Path(directory) / f"{safe}.sock"
    if len(str(path)) > IPC_PATH_MAX:
        raise VadmonError(
            f"ipc socket path is too long ({len(str(path))} > {IPC_PATH_MAX} bytes)",
            str(path),
            "use a shorter transport.ipc_dir in the config",
        )
    return f"ipc://{path}"


def ipc_path(endpoint: str) -> Path | None:
    return Path(endpoint[len("ipc://") :]) if endpoint.startswith("ipc://") else None


def endpoint_is_live(endpoint: str, timeout_s: float = 0.5) -> bool:
    """True when some process accepts connections on this ipc socket file."""
    path = ipc_path(endpoint)
    return path is not None and socket_is_live(path, timeout_s)


def bind(sock: zmq.Socket, endpoint: str) -> None:
    """Bind, refusing an ipc endpoint another live process serves; stale sockets are removed
    (only sockets: a user's file that happens to sit at the path is never deleted)."""
    path = ipc_path(endpoint)
    if path is not None:
        if endpoint_is_live(endpoint):
            raise VadmonError(
                "endpoint already in use by another running process",
                endpoint,
                "stop the other vadmon instance or use a different transport.ipc_dir",
            )
        refuse_non_socket(path)
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
    try:
        sock.bind(endpoint)
    except zmq.ZMQError as exc:
        raise VadmonError(f"cannot bind: {exc.strerror}", endpoint, "free the address") from None
    if path is not None:
        os.chmod(path, 0o600)  # the directory may be shared: only we may connect


def refuse_non_socket(path: Path) -> None:
    """One line when something other than a socket (a file, a link, a folder) holds the path."""
    try:
        mode = path.lstat().st_mode
    except FileNotFoundError:
        return
    if not stat.S_ISSOCK(mode):
        raise VadmonError(
            "a file that is not a socket is in the way of an ipc endpoint; it was left untouched",
            str(path),
            "move that file away or set transport.ipc_dir to a folder of its own",
        )


def unlink_endpoint(endpoint: str) -> None:
    """Remove our socket file; anything else found at the path is left alone."""
    path = ipc_path(endpoint)
    if path is not None:
        with contextlib.suppress(FileNotFoundError):
            if stat.S_ISSOCK(path.lstat().st_mode):
                path.unlink()


# --- CURVE ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class CurveServer:
    """Server side of a CURVE link: its secret key file and the allowed clients' public keys."""

    secret_key_file: Path
    allowed_clients_dir: Path


@dataclass(frozen=True)
class CurveClient:
    """Client side: its own key pair file and the server's public key file."""

    secret_key_file: Path
    server_public_key_file: Path


def _apply_curve(sock: zmq.Socket, endpoint: str, curve: CurveServer | CurveClient | None) -> None:
    """Keys come from ``vadmon.runtime.security`` (which also refuses world-readable secret files)."""
    if curve is None or not endpoint.startswith("tcp://"):
        return
    keypair = load_keypair(curve.secret_key_file)
    if isinstance(curve, CurveServer):
        configure_curve_server(sock, keypair)  # empty ZAP domain: the authenticator's '*'
    else:
        configure_curve_client(sock, keypair, load_public_key(curve.server_public_key_file))


# --- sockets --------------------------------------------------------------------------------


@dataclass(frozen=True)
class SocketLimits:
    """Bounds on queued messages, shutdown time and accepted message size."""

    hwm: int = DEFAULT_HWM
    linger_ms: int = DEFAULT_LINGER_MS
    max_msg_bytes: int = DEFAULT_MAX_MSG_BYTES
    # Kernel socket buffer (0: OS default). Small buffers keep "latest wins" honest: the OS
    # would otherwise queue hundreds of small messages behind a stopped consumer.
    kernel_buffer_bytes: int = 0


def make_socket(
    ctx: zmq.Context,
    kind: int,
    endpoint: str,
    *,
    do_bind: bool,
    limits: SocketLimits = SocketLimits(),  # noqa: B008 - frozen dataclass, safe default
    curve: CurveServer | CurveClient | None = None,
    topics: tuple[bytes, ...] = (),
) -> zmq.Socket:
    """One socket with HWM, LINGER, MAXMSGSIZE (receivers) and optional CURVE, bound/connected."""
    sock = ctx.socket(kind)
    sock.setsockopt(zmq.LINGER, limits.linger_ms)
    sock.setsockopt(zmq.SNDHWM, limits.hwm)
    sock.setsockopt(zmq.RCVHWM, limits.hwm)
    if kind in (zmq.SUB, zmq.PULL):
        sock.setsockopt(zmq.MAXMSGSIZE, limits.max_msg_bytes)
    if limits.kernel_buffer_bytes > 0:
        sock.setsockopt(zmq.SNDBUF, limits.kernel_buffer_bytes)
        sock.setsockopt(zmq.RCVBUF, limits.kernel_buffer_bytes)
    if kind == zmq.PUSH and not do_bind:
        # No pipe before the peer is really there: sends fail fast (counted) instead of queueing.
        sock.setsockopt(zmq.IMMEDIATE, 1)
    if kind == zmq.SUB:
        for topic in topics or (b"",):
            sock.setsockopt(zmq.SUBSCRIBE, topic)
    _apply_curve(sock, endpoint, curve)
    try:
        if do_bind:
            bind(sock, endpoint)
        else:
            sock.connect(endpoint)
    except BaseException:
        sock.close(linger=0)
        raise
    return sock


def publisher(ctx: zmq.Context, endpoint: str, *, do_bind: bool = True, **kw: Any) -> zmq.Socket:
    return make_socket(ctx, zmq.PUB, endpoint, do_bind=do_bind, **kw)


def subscriber(ctx: zmq.Context, endpoint: str, *, do_bind: bool = False, **kw: Any) -> zmq.Socket:
    return make_socket(ctx, zmq.SUB, endpoint, do_bind=do_bind, **kw)


def pusher(ctx: zmq.Context, endpoint: str, *, do_bind: bool = True, **kw: Any) -> zmq.Socket:
    return make_socket(ctx, zmq.PUSH, endpoint, do_bind=do_bind, **kw)


def puller(ctx: zmq.Context, endpoint: str, *, do_bind: bool = False, **kw: Any) -> zmq.Socket:
    return make_socket(ctx, zmq.PULL, endpoint, do_bind=do_bind, **kw)


def close_socket(sock: zmq.Socket, endpoint: str | None = None) -> None:
    """Close with the socket's bounded LINGER and remove our ipc file."""
    sock.close()
    if endpoint:
        unlink_endpoint(endpoint)


class Reconnector:
    """Reconnects a *connecting* socket's endpoints whenever libzmq drops one.

    libzmq 4.3.5 drops a peer that sent a message over MAXMSGSIZE and then never reconnects
    that endpoint (no retry events at all), so one over-size message would cut a camera off
    until a restart. The socket's monitor reports every disconnect; ``check`` (called from the
    owner's loop, the socket's own thread) disconnects and connects the endpoint again.
    """

    def __init__(self, sock: zmq.Socket, endpoints: list[str]) -> None:
        self.sock = sock
        self.endpoints = set(endpoints)
        self.monitor = sock.get_monitor_socket(zmq.EVENT_DISCONNECTED)
        self.reconnects = 0

    def check(self) -> int:
        """Reconnect what was dropped since the last call; returns how many."""
        done = 0
        while self.monitor.poll(0):
            event = recv_monitor_message(self.monitor, zmq.NOBLOCK)
            endpoint = bytes(event.get("endpoint", b"")).decode(errors="replace")
            if event["event"] != zmq.EVENT_DISCONNECTED or endpoint not in self.endpoints:
                continue
            with contextlib.suppress(zmq.ZMQError):
                self.sock.disconnect(endpoint)
            self.sock.connect(endpoint)
            done += 1
        self.reconnects += done
        return done

    def close(self) -> None:
        with contextlib.suppress(zmq.ZMQError):
            self.sock.disable_monitor()
        self.monitor.close(linger=0)


# --- sending and receiving ------------------------------------------------------------------


@dataclass
class RecvStats:
    received: int = 0
    malformed: int = 0
    last_error: str = ""
    peer: str = ""  # CURVE User-Id (client key, z85) of the last message, when asked for


@dataclass
class SendStats:
    sent: int = 0
    dropped: int = 0


def send_message(
    sock: zmq.Socket, msg: Message, payload: bytes | None = None, stats: SendStats | None = None
) -> bool:
    """Non-blocking send: when the peer's queue is full (or no peer), drop and count."""
    return send_parts(sock, msg.to_parts(payload), stats)


def send_parts(sock: zmq.Socket, parts: list[Any], stats: SendStats | None = None) -> bool:
    """``send_message`` for parts already encoded (a status beat is not a ``Message``)."""
    try:
        sock.send_multipart(parts, flags=zmq.NOBLOCK)
    except zmq.Again:
        if stats is not None:
            stats.dropped += 1
        return False
    if stats is not None:
        stats.sent += 1
    return True


def recv_message(
    sock: zmq.Socket,
    timeout_ms: int,
    stats: RecvStats | None = None,
    peer: bool = False,
    topics: Mapping[bytes, type[Message]] = TOPICS,
) -> tuple[Message, bytes | None] | None:
    """Next valid message, or ``None`` on timeout or when the message was malformed (counted).
    ``peer``: record the sender's CURVE key in ``stats.peer`` (authenticated by ZAP);
    ``topics``: the message types accepted (``messages.decode``)."""
    if not sock.poll(timeout_ms, zmq.POLLIN):
        return None
    try:
        parts = sock.recv_multipart(flags=zmq.NOBLOCK, copy=False)
    except zmq.Again:  # readiness can be spurious (e.g. a peer failing its CURVE handshake)
        return None
    try:
        result = decode([p.buffer for p in parts], topics)
    except MessageError as exc:
        if stats is not None:
            stats.malformed += 1
            stats.last_error = str(exc)[:200]
        return None
    if stats is not None:
        stats.received += 1
        if peer:
            try:
                stats.peer = parts[0].get("User-Id") or ""
            except zmq.ZMQError:  # no ZAP on this socket
                stats.peer = ""
    return result
