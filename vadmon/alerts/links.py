"""Signed, expiring links to an event's page, snapshot and clip (served by ``vadmon.web``).

A link is ``<public_url><path>?exp=<unix s>&sig=<HMAC-SHA256(key, path "\\n" exp)>``: anyone
holding it may GET exactly that path until ``exp`` and nothing else, so a receiver on another
machine (chat relay, Home Assistant) can show the snapshot without a login, and a leaked link
dies on its own. The key is 32 random bytes in ``<storage.dir>/web/links.key`` (0600), made by
whichever process needs it first (the alerts process signs, the web process verifies); delete
the file to revoke every link ever sent.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from vadmon.atomic import PRIVATE_FILE, make_dirs
from vadmon.errors import VadmonError

KEY_BYTES = 32
SIG_CHARS = 43  # base64url of 32 bytes, no padding


@dataclass(frozen=True)
class LinkSettings:
    """Where links point and how long they live (``web.public_url``, ``web.link_ttl_s``)."""

    public_url: str  # no trailing slash
    ttl_s: float
    key_path: Path


def load_key(path: Path) -> bytes:
    """The link key, created (0600, O_EXCL: two processes racing agree) when missing."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        data = _create_key(path)
    except OSError as exc:
        raise VadmonError(f"cannot read the link key ({exc.strerror})", str(path)) from None
    if len(data) != KEY_BYTES:
        raise VadmonError(
            f"link key is {len(data)} bytes, expected {KEY_BYTES}",
            str(path),
            "delete the file; a new key is made (old links stop working)",
        )
    return data


def _create_key(path: Path) -> bytes:
    make_dirs(path.parent, private=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_CREAT | os.O_EXCL | os.O_WRONLY | os.O_CLOEXEC, PRIVATE_FILE)
    try:
        os.write(fd, secrets.token_bytes(KEY_BYTES))
        os.fsync(fd)
    finally:
        os.close(fd)
    try:
        os.link(tmp, path)  # atomic and refuses to replace: the first writer's key wins
    except FileExistsError:
        pass
    finally:
        tmp.unlink()
    return path.read_bytes()


def signature(key: bytes, path: str, exp: int) -> str:
    mac = hmac.new(key, f"{path}\n{exp}".encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(mac).rstrip(b"=").decode()


def sign_path(key: bytes, path: str, exp: int) -> str:
    """``path?exp=…&sig=…`` for a path of ours (ASCII, already quoted)."""
    return f"{path}?exp={exp}&sig={signature(key, path, exp)}"


def check_signature(key: bytes, path: str, exp: str | None, sig: str | None, now: float) -> str:
    """ "" when the link is valid; otherwise why not ("expired", "bad signature", …)."""
    if not exp or not sig:
        return "no signature"
    if not exp.isdigit() or len(exp) > 12 or len(sig) != SIG_CHARS:
        return "malformed signature"
    if not hmac.compare_digest(signature(key, path, int(exp)), sig):
        return "bad signature"
    if int(exp) < now:
        return "expired"
    return ""


def event_paths(event_id: str) -> dict[str, str]:
    """The web server's paths for one event (the one place that names them)."""
    quoted = quote(event_id, safe="")
    base = f"/api/events/{quoted}"
    return {
        "event_url": f"/e/{quoted}",
        "snapshot_url": f"{base}/snapshot.jpg",
        "clip_url": f"{base}/clip.mp4",
    }


def event_links(s: LinkSettings, key: bytes, event_id: str, now: float) -> dict[str, str | int]:
    """Signed absolute links for one event: ``event_url`` (a page with its snapshot, clip
    and explanation), ``snapshot_url`` and ``clip_url``; each works with its signature alone."""
    exp = int(now + s.ttl_s)
    links: dict[str, str | int] = {
        name: s.public_url + sign_path(key, path, exp)
        for name, path in event_paths(event_id).items()
    }
    links["links_expire_ts"] = exp
    return links
