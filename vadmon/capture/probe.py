"""Why a stream would not open: ask the server ourselves (FFmpeg does not tell OpenCV).

Also the classified ``SourceError`` every source raises (re-exported by ``source``).

A TCP connect, then one RTSP ``DESCRIBE`` (or HTTP ``HEAD``) without credentials: a camera
URL's password is only sent when the server challenges for it, and as Digest when offered.
"""

from __future__ import annotations

import base64
import hashlib
import re
import socket
from enum import Enum
from urllib.parse import SplitResult, unquote, urlsplit, urlunsplit

DEFAULT_PORTS = {"rtsp": 554, "rtsps": 322, "rtmp": 1935, "http": 80, "https": 443}


class ErrorKind(str, Enum):
    AUTH = "auth"
    TIMEOUT = "timeout"
    NOT_FOUND = "not_found"
    REFUSED = "refused"
    CODEC = "codec"
    ENDED = "ended"
    UNKNOWN = "unknown"


class SourceError(Exception):
    """A classified source failure; the message never contains credentials."""

    def __init__(self, kind: ErrorKind, detail: str) -> None:
        self.kind = kind
        self.detail = detail
        super().__init__(f"{kind.value}: {detail}")


_STATUS = re.compile(rb"^(?:RTSP|HTTP)/\d\.\d (\d{3})")
_DIGEST_PARAM = re.compile(r'(\w+)="([^"]*)"')


def classify_stream_failure(url: str, timeout_s: float = 5.0) -> tuple[ErrorKind, str]:
    """Ask the server directly why a stream would not open (FFmpeg does not tell OpenCV)."""
    parts = urlsplit(url)
    scheme = (parts.scheme or "").lower()
    host = parts.hostname or ""
    try:
        port = parts.port or DEFAULT_PORTS.get(scheme, 554)
    except ValueError:
        return ErrorKind.NOT_FOUND, "invalid port in URL"
    try:
        conn = socket.create_connection((host, port), timeout=timeout_s)
    except socket.gaierror:
        return ErrorKind.NOT_FOUND, f"unknown host {host}"
    except ConnectionRefusedError:
        return ErrorKind.REFUSED, f"connection refused by {host}:{port}"
    except TimeoutError:
        return ErrorKind.TIMEOUT, f"no answer from {host}:{port}"
    except OSError as exc:
        return ErrorKind.REFUSED, f"cannot connect to {host}:{port} ({exc.strerror})"
    with conn:
        if scheme not in ("rtsp", "http"):
            return ErrorKind.CODEC, "server reachable but the stream could not be decoded"
        return _ask_server(conn, url, scheme, timeout_s)


def _ask_server(
    conn: socket.socket, url: str, scheme: str, timeout_s: float
) -> tuple[ErrorKind, str]:
    """One request without credentials; only when the server challenges (401) and the URL has
    credentials, answer the challenge once (Digest when offered, so the password never
    crosses the wire; Basic only when that is all the server accepts)."""
    parts = urlsplit(url)
    bare = urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2]))
    conn.settimeout(timeout_s)
    try:
        code, headers = _request(conn, scheme, bare, parts, 1, None)
        if code == 401 and parts.username is not None and scheme == "rtsp":
            auth = _answer_challenge(headers, parts, bare)
            if auth is not None:
                code, headers = _request(conn, scheme, bare, parts, 2, auth)
    except TimeoutError:
        return ErrorKind.TIMEOUT, "server accepted the connection but did not answer"
    except OSError as exc:
        return ErrorKind.REFUSED, f"connection dropped ({exc.strerror})"
    if code is None:
        return ErrorKind.CODEC, "server does not speak " + scheme.upper()
    if code in (401, 403):
        return ErrorKind.AUTH, f"server answered {code}: check user and password"
    if code == 404:
        return ErrorKind.NOT_FOUND, "server answered 404: check the path"
    if code < 300:
        return ErrorKind.CODEC, "server is fine but the stream could not be decoded"
    return ErrorKind.UNKNOWN, f"server answered {code}"


def _request(
    conn: socket.socket, scheme: str, bare: str, parts: SplitResult, cseq: int, auth: str | None
) -> tuple[int | None, list[str]]:
    """Send DESCRIBE (RTSP) or HEAD (HTTP); return the status code and the header lines."""
    lines = [f"DESCRIBE {bare} RTSP/1.0", f"CSeq: {cseq}", "Accept: application/sdp"]
    if scheme == "http":
        lines = [f"HEAD {parts.path or '/'} HTTP/1.0", f"Host: {parts.hostname}"]
    if auth is not None:
        lines.append(f"Authorization: {auth}")
    conn.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
    reply = b""
    while b"\r\n\r\n" not in reply and len(reply) < 16384:
        chunk = conn.recv(4096)
        if not chunk:
            break
        reply += chunk
    match = _STATUS.match(reply)
    head = reply.split(b"\r\n\r\n", 1)[0].decode("latin-1").split("\r\n")[1:]
    return (int(match.group(1)) if match else None), head


def _answer_challenge(headers: list[str], parts: SplitResult, uri: str) -> str | None:
    """The ``Authorization`` value for the server's ``WWW-Authenticate`` challenge."""
    challenges = [h.split(":", 1)[1].strip() for h in headers if ":" in h and
                  h.split(":", 1)[0].strip().lower() == "www-authenticate"]  # fmt: skip
    user, password = unquote(parts.username or ""), unquote(parts.password or "")
    for challenge in challenges:
        if challenge.lower().startswith("digest "):
            params = dict(_DIGEST_PARAM.findall(challenge))
            realm, nonce = params.get("realm", ""), params.get("nonce", "")
            ha1 = _md5(f"{user}:{realm}:{password}")
            response = _md5(f"{ha1}:{nonce}:{_md5(f'DESCRIBE:{uri}')}")
            return (
                f'Digest username="{user}", realm="{realm}", nonce="{nonce}", '
                f'uri="{uri}", response="{response}"'
            )
    if any(c.lower().startswith("basic") for c in challenges):
        return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
    return None


def _md5(text: str) -> str:
    return hashlib.md5(text.encode(), usedforsecurity=False).hexdigest()
