"""Standard Webhooks signatures (https://www.standardwebhooks.com).

Headers: ``webhook-id``, ``webhook-timestamp`` (unix seconds) and
``webhook-signature: v1,<base64 HMAC-SHA256(key, f"{id}.{timestamp}.{body}")>``; several
space-separated signatures are allowed so a sender can sign with the old and the new secret
while a receiver rotates. Secrets are ``whsec_<base64 key>``; keys shorter than 24 bytes are
refused because a short HMAC key is guessable offline from any captured request.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets as _secrets
import time
from collections.abc import Mapping

from vadmon.errors import VadmonError

PREFIX = "whsec_"
MIN_KEY_BYTES = 24
MAX_SIGNATURE_HEADER = 4096


class SecretError(VadmonError):
    """A webhook secret that cannot be used (bad format or too short)."""


class WebhookVerificationError(Exception):
    """A request that does not carry a valid, fresh signature; receivers answer 400/401."""


def generate_secret(nbytes: int = 32) -> str:
    return PREFIX + base64.b64encode(_secrets.token_bytes(nbytes)).decode()


def decode_secret(secret: str) -> bytes:
    """``whsec_<base64>`` → key bytes (never echoes the secret in the error)."""
    if not isinstance(secret, str) or not secret.startswith(PREFIX):
        raise SecretError(
            "webhook secret must start with 'whsec_'", "webhook secret", "use generate_secret()"
        )
    try:
        key = base64.b64decode(secret[len(PREFIX) :], validate=True)
    except (binascii.Error, ValueError):
        raise SecretError(
            "webhook secret is not valid base64 after 'whsec_'", "webhook secret"
        ) from None
    if len(key) < MIN_KEY_BYTES:
        raise SecretError(
            f"webhook secret key is {len(key)} bytes, need at least {MIN_KEY_BYTES}",
            "webhook secret",
            "generate a longer one, e.g. whsec_ + base64 of 32 random bytes",
        )
    return key


def signature(key: bytes, msg_id: str, timestamp: int, body: bytes) -> str:
    """One ``v1,<base64>`` signature entry."""
    signed = f"{msg_id}.{timestamp}.".encode() + body
    digest = hmac.new(key, signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def sign(
    secrets: str | list[str], msg_id: str, body: bytes, timestamp: int | None = None
) -> dict[str, str]:
    """Headers for one request; with several secrets every one of them signs (rotation)."""
    if isinstance(secrets, str):
        secrets = [secrets]
    if not secrets:
        raise SecretError("no webhook secret configured", "webhook endpoint")
    ts = int(time.time()) if timestamp is None else int(timestamp)
    sigs = " ".join(signature(decode_secret(s), msg_id, ts, body) for s in secrets)
    return {"webhook-id": msg_id, "webhook-timestamp": str(ts), "webhook-signature": sigs}


def _header(headers: Mapping[str, str], name: str) -> str:
    for key, value in headers.items():
        if key.lower() == name:
            if not isinstance(value, str) or not value.strip():
                raise WebhookVerificationError(f"empty {name} header")
            return value.strip()
    raise WebhookVerificationError(f"missing {name} header")


def _parse_signatures(raw: str) -> list[bytes]:
    if len(raw) > MAX_SIGNATURE_HEADER:
        raise WebhookVerificationError("webhook-signature header too long")
    found: list[bytes] = []
    for entry in raw.split():
        version, sep, value = entry.partition(",")
        if not sep or not value:
            raise WebhookVerificationError("malformed webhook-signature entry (want 'v1,<b64>')")
        if version != "v1":
            continue  # unknown schemes are skipped, as the standard asks
        try:
            found.append(base64.b64decode(value, validate=True))
        except (binascii.Error, ValueError):
            raise WebhookVerificationError("webhook-signature is not base64") from None
    if not found:
        raise WebhookVerificationError("no v1 signature in webhook-signature header")
    return found


def verify(
    headers: Mapping[str, str],
    body: bytes,
    secrets: list[str],
    tolerance_s: float = 300,
    now: float | None = None,
) -> str:
    """Check id/timestamp/signature; returns the webhook-id or raises WebhookVerificationError."""
    msg_id = _header(headers, "webhook-id")
    ts_raw = _header(headers, "webhook-timestamp")
    if not ts_raw.isdigit() or len(ts_raw) > 12:
        raise WebhookVerificationError("webhook-timestamp is not an integer")
    ts = int(ts_raw)
    current = time.time() if now is None else now
    if abs(current - ts) > tolerance_s:
        raise WebhookVerificationError("webhook-timestamp outside the tolerance window")
    offered = _parse_signatures(_header(headers, "webhook-signature"))
    keys = [decode_secret(s) for s in secrets]
    for key in keys:
        expected = base64.b64decode(signature(key, msg_id, ts, body)[3:])
        if any(hmac.compare_digest(expected, sig) for sig in offered):
            return msg_id
    raise WebhookVerificationError("no matching signature")
