"""CURVE key files: generating, loading and checking them.

Keys are stored in ZeroMQ's certificate format (``NAME.key`` public, ``NAME.key_secret``
secret) so that ``zmq.auth`` and other ZeroMQ tools read them unchanged. A secret file that
others can read is refused: CURVE is only as private as that file.
"""

from __future__ import annotations

import datetime
import os
import stat
from dataclasses import dataclass, field
from pathlib import Path

import zmq
import zmq.auth
from zmq.auth.thread import ThreadAuthenticator

from vadmon.errors import VadmonError
from vadmon.runtime.curve_watch import KeyGate

PUBLIC_SUFFIX = ".key"
SECRET_SUFFIX = ".key_secret"


@dataclass(frozen=True)
class CurveKeyPair:
    """Z85-encoded CURVE keys (40 bytes each); the repr never shows the secret."""

    public: bytes
    secret: bytes = field(repr=False)


def _certificate(public: bytes, secret: bytes | None, name: str) -> str:
    now = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    kind = "**Secret** Certificate" if secret else "Public Certificate"
    lines = [
        f"#   ****  Generated on {now} by vadmon keys  ****",
        f"#   ZeroMQ CURVE {kind}",
        "#   DO NOT PROVIDE THIS FILE TO OTHER USERS nor change its permissions."
        if secret
        else "#   Give this file to the peers that must accept this key.",
        "",
        "metadata",
        f'    name = "{name}"',
        "curve",
        f'    public-key = "{public.decode()}"',
    ]
    if secret:
        lines.append(f'    secret-key = "{secret.decode()}"')
    return "\n".join(lines) + "\n"


def generate_keypair(directory: Path, name: str, force: bool = False) -> tuple[Path, Path]:
    """Write ``NAME.key`` (0644) and ``NAME.key_secret`` (0600); returns (public, secret)."""
    if not name or "/" in name or name.startswith("."):
        raise VadmonError(f"invalid key name {name!r}", "", "use a plain name like 'inference'")
    directory.mkdir(parents=True, exist_ok=True)
    public_path = directory / f"{name}{PUBLIC_SUFFIX}"
    secret_path = directory / f"{name}{SECRET_SUFFIX}"
    if not force:
        for path in (public_path, secret_path):
            if path.exists():
                raise VadmonError(
                    "key file already exists", str(path), "pass --force to replace it"
                )
    public, secret = zmq.curve_keypair()
    _write(secret_path, _certificate(public, secret, name), 0o600)
    _write(public_path, _certificate(public, None, name), 0o644)
    return public_path, secret_path


def _write(path: Path, text: str, mode: int) -> None:
    """Create with the final mode from the start: a secret must never exist world-readable."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.unlink(missing_ok=True)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)
    os.chmod(tmp, mode)  # umask may have removed bits we want (0644)
    os.replace(tmp, path)


def _read_certificate(path: Path) -> tuple[bytes, bytes | None]:
    if not path.is_file():
        raise VadmonError("key file not found", str(path), "create it with 'vadmon keys generate'")
    try:
        public, secret = zmq.auth.load_certificate(path)
    except (ValueError, OSError):
        raise VadmonError("not a ZeroMQ CURVE certificate", str(path), "regenerate it") from None
    for key in (public, secret):
        if key is not None and not _valid_z85_key(key):
            raise VadmonError("malformed CURVE key", str(path), "regenerate it")
    return public, secret


def _valid_z85_key(key: bytes) -> bool:
    if len(key) != 40:
        return False
    try:
        return len(zmq.utils.z85.decode(key)) == 32
    except (ValueError, KeyError):
        return False


def load_public_key(path: Path) -> bytes:
    """The Z85 public key from a ``.key`` (or ``.key_secret``) file."""
    return _read_certificate(Path(path))[0]


def load_keypair(secret_path: Path) -> CurveKeyPair:
    """Load a ``.key_secret`` file; refuses group/other-readable files and mismatched keys."""
    secret_path = Path(secret_path)
    public, secret = _read_certificate(secret_path)
    if secret is None:
        raise VadmonError(
            "file holds no secret key", str(secret_path), "pass the NAME.key_secret file"
        )
    mode = stat.S_IMODE(secret_path.stat().st_mode)
    if mode & 0o077:
        raise VadmonError(
            f"secret key file is accessible by others (mode {mode:o})",
            str(secret_path),
            f"chmod 600 {secret_path}",
        )
    if zmq.curve_public(secret) != public:
        raise VadmonError("public and secret key do not match", str(secret_path), "regenerate it")
    return CurveKeyPair(public=public, secret=secret)


def load_allowed_clients(directory: Path) -> list[bytes]:
    """Public keys of every ``*.key`` file in ``directory`` (the clients a server accepts)."""
    directory = Path(directory)
    if not directory.is_dir():
        raise VadmonError(
            "allowed clients directory not found",
            str(directory),
            "create it and copy client .key files into it",
        )
    keys = [load_public_key(p) for p in sorted(directory.glob(f"*{PUBLIC_SUFFIX}"))]
    if not keys:
        raise VadmonError(
            "no client public keys (*.key) in allowed clients directory",
            str(directory),
            "copy each client's NAME.key file there",
        )
    return keys


def start_authenticator(context: zmq.Context, allowed_clients_dir: Path) -> ThreadAuthenticator:
    """Start ZAP for ``context``: CURVE clients are accepted only with a listed public key."""
    keys = load_allowed_clients(allowed_clients_dir)  # fail loudly before starting a thread
    auth = ThreadAuthenticator(context)
    auth.start()
    # a callback, not configure_curve(location): each refused key is logged once (KeyGate)
    gate = KeyGate(keys, Path(allowed_clients_dir))
    auth.configure_curve_callback(domain="*", credentials_provider=gate)
    return auth


def configure_curve_server(socket: zmq.Socket, keypair: CurveKeyPair) -> None:
    """Make ``socket`` a CURVE server (call before bind)."""
    socket.curve_secretkey = keypair.secret
    socket.curve_publickey = keypair.public
    socket.curve_server = True


def configure_curve_client(socket: zmq.Socket, keypair: CurveKeyPair, server_public: bytes) -> None:
    """Make ``socket`` a CURVE client of the server with ``server_public`` (before connect)."""
    socket.curve_secretkey = keypair.secret
    socket.curve_publickey = keypair.public
    socket.curve_serverkey = server_public
