"""The capture → inference link across hosts: tcp:// with CURVE, frames inside the message.

On one host the sampled frames stay in shared memory and a ``SnippetMessage`` only names ring
slots. Shared memory cannot cross hosts, so on a tcp link the capture process copies the k
sampled frames of each snippet out of its own ring, resizes them to the encoder's fixed input
geometry (340×256 BGR, the first step of the published feature recipe, see ``vadmon.model.crops``)
and sends them raw as the message's payload part. The inference side would make exactly that
resize itself, so scores are bit-identical to the shared-memory path; the payload is
k × 261 kB per 16-frame snippet whatever the camera resolution (≈ 3 Mbit/s per 25 fps camera),
needs no codec, and is validated by exact size on receipt (``SnippetMessage.check_payload``).

Security: the inference host binds a PULL socket as CURVE server; a ZAP authenticator accepts
only client public keys found in ``allowed_clients_dir``. Unknown keys and plaintext peers never
complete the handshake, so not one of their messages reaches the inference loop.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import zmq
from zmq.auth.thread import ThreadAuthenticator

from vadmon.errors import VadmonError
from vadmon.runtime.curve_watch import watch_refusals
from vadmon.runtime.messages import PreviewFrame, SnippetMessage
from vadmon.runtime.ring import RingReader
from vadmon.runtime.security import (
    PUBLIC_SUFFIX,
    SECRET_SUFFIX,
    load_allowed_clients,
    load_keypair,
    load_public_key,
    start_authenticator,
)
from vadmon.runtime.transport import (
    CurveClient,
    CurveServer,
    SocketLimits,
    make_socket,
    send_message,
)

MAX_PREVIEW_BYTES = 1 << 20

# = vadmon.model.crops.FRAME_WIDTH/FRAME_HEIGHT (tests check); not imported from there because
# vadmon.model.crops pulls in torch, which a capture process must not load (~500 MB per camera).
FRAME_WIDTH, FRAME_HEIGHT = 340, 256


@dataclass(frozen=True)
class LinkServer:
    """Inference side: bind here, accept only the listed client keys, and from each key only
    snippets of its own cameras dated near our clock (``admit``)."""

    bind: str
    secret_file: Path
    allowed_clients_dir: Path
    cameras: Mapping[str, frozenset[str]]  # client public key (z85) → cameras it may send
    max_skew_s: float
    verdict_bind: str | None = None  # the back-channel ROUTER (vadmon.inference.verdicts)

    def admit(self, msg: object, peer: str, now: float) -> str | None:
        """None when this snippet or preview from client key ``peer`` may be used, else why not
        (a counter name). Other messages are not ours to judge here."""
        if isinstance(msg, SnippetMessage):
            camera, ts = msg.camera, msg.t_end
        elif isinstance(msg, PreviewFrame):
            camera, ts = msg.camera, msg.ts
        else:
            return None
        if camera not in self.cameras.get(peer, ()):
            return "refused_camera"  # an allowed key naming a camera that is not its own
        if ts - now > self.max_skew_s:  # the past is handled by staleness (latest wins)
            return "clock_skew"  # e.g. dated an hour ahead: would hold the camera's events
        return None


@dataclass(frozen=True)
class LinkPreviewSettings:
    """Preview JPEGs sent over the link (``transport.tcp.preview_*``); fps 0 sends none."""

    fps: float
    max_width: int
    jpeg_quality: int
    buffer_s: float


@dataclass(frozen=True)
class LinkClient:
    """Capture side: connect here as a CURVE client of the server's public key."""

    connect: str
    secret_file: Path
    server_public_file: Path
    previews: LinkPreviewSettings | None = None
    verdicts: str | None = None  # the back-channel to ask (vadmon.capture.verdicts)


def _check_tcp(endpoint: str, where: str) -> None:
    if not endpoint.startswith("tcp://"):
        raise VadmonError(f"{endpoint!r} is not a tcp:// endpoint", where)


def open_server(
    ctx: zmq.Context, link: LinkServer, limits: SocketLimits
) -> tuple[zmq.Socket, ThreadAuthenticator]:
    """PULL bound on tcp as CURVE server; returns (socket, authenticator): stop both."""
    _check_tcp(link.bind, "transport.tcp.bind")
    load_keypair(link.secret_file)  # one clear error for a missing/unsafe/mismatched key
    load_allowed_clients(link.allowed_clients_dir)  # refuse to start with nobody allowed
    auth = start_authenticator(ctx, link.allowed_clients_dir)
    try:
        curve = CurveServer(link.secret_file, link.allowed_clients_dir)
        sock = make_socket(ctx, zmq.PULL, link.bind, do_bind=True, limits=limits, curve=curve)
    except BaseException:
        auth.stop()
        raise
    return sock, auth


def open_client(ctx: zmq.Context, link: LinkClient, limits: SocketLimits) -> zmq.Socket:
    """PUSH connected to the inference host as a CURVE client (IMMEDIATE: no queue until the
    handshake succeeded, so a refused or absent server only costs counted drops)."""
    _check_tcp(link.connect, "transport.tcp.connect")
    load_keypair(link.secret_file)
    load_public_key(link.server_public_file)
    curve = CurveClient(link.secret_file, link.server_public_file)
    sock = make_socket(ctx, zmq.PUSH, link.connect, do_bind=False, limits=limits, curve=curve)
    public = Path(str(link.secret_file).removesuffix(SECRET_SUFFIX) + PUBLIC_SUFFIX)
    watch_refusals(sock, link.connect, public)  # one ERROR line if the server refuses our key
    return sock


# --- frames in the payload -------------------------------------------------------------------


class FramePacker:
    """Capture side: a snippet's sampled frames from our own ring → (message, payload)."""

    def __init__(self) -> None:
        self._readers: dict[str, RingReader] = {}

    def pack(self, msg: SnippetMessage) -> tuple[SnippetMessage, bytes] | None:
        """None when a sampled frame was already overwritten in the ring (counted by caller)."""
        reader = self._reader(msg.ring)
        frames = []
        for slot, seq in zip(msg.slots, msg.seqs, strict=True):
            frame = reader.read(slot, seq)
            if frame is None:
                return None
            if frame.shape[2] == 1:
                frame = cv2.cvtColor(frame, cv2.COLOR_GRAY2BGR)
            frames.append(cv2.resize(frame, (FRAME_WIDTH, FRAME_HEIGHT)))
        sent = SnippetMessage(
            camera=msg.camera,
            snippet_index=msg.snippet_index,
            t_start=msg.t_start,
            t_end=msg.t_end,
            ring="",
            height=FRAME_HEIGHT,
            width=FRAME_WIDTH,
            slots=msg.slots,
            seqs=msg.seqs,
            channels=3,
            frames_in_snippet=msg.frames_in_snippet,
        )
        return sent, b"".join(np.ascontiguousarray(f).tobytes() for f in frames)

    def _reader(self, ring: str) -> RingReader:
        reader = self._readers.get(ring)
        if reader is None:
            for old in self._readers.values():  # the ring was replaced: drop the old mapping
                old.close()
            self._readers = {ring: RingReader(ring)}
            reader = self._readers[ring]
        return reader

    def close(self) -> None:
        for reader in self._readers.values():
            reader.close()
        self._readers.clear()


def unpack_frames(msg: SnippetMessage, payload: bytes) -> list[np.ndarray]:
    """Inference side: the payload (size already checked by ``decode``) → k HxWxC frames."""
    msg.check_payload(payload)
    shape = (msg.height, msg.width, msg.channels)
    flat = np.frombuffer(payload, np.uint8)
    size = msg.frame_bytes()
    return [flat[i * size : (i + 1) * size].reshape(shape) for i in range(len(msg.slots))]


def relay_preview(pub: zmq.Socket, msg: PreviewFrame, payload: bytes | memoryview | None) -> bool:
    """Inference side: republish a preview that came over the link to the local alerts process.

    Only a JPEG of sane size is passed on: the alerts process decodes it for snapshots and clips,
    and a peer is not trusted to send what its header says."""
    if payload is None or not 0 < len(payload) <= MAX_PREVIEW_BYTES:
        return False
    data = bytes(payload)
    if data[:3] != b"\xff\xd8\xff":
        return False
    return send_message(pub, msg, data)
