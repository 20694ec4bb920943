"""Credential redaction for anything that may end up in a log, a repr or a webhook payload.

Camera URLs routinely carry passwords (``rtsp://admin:pw@cam/stream``) and users paste them
raw, so a password may itself contain ``@ : % /``. A standards-conforming URL parser then
splits the URL in the wrong place and leaks the tail of the password. We therefore do not
parse: the userinfo is everything between ``scheme://`` and the *last* ``@`` that is followed
by something shaped like a host. That over-redacts a URL whose path contains ``@`` (harmless)
and never under-redacts one whose password does (the failure that matters).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from urllib.parse import quote, unquote, urlsplit

MASK = "***"

_SCHEME = re.compile(r"^(?P<scheme>[A-Za-z][A-Za-z0-9+.\-]*)://")
# host (name, IPv4 or [IPv6]) with optional port, then end of authority
_HOST_AFTER_AT = re.compile(r"(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.\-_~]+)(?::\d*)?(?=[/?#]|$)")
# query parameters whose values are credentials in common camera / streaming URLs
_SECRET_PARAMS = re.compile(
    r"(?P<key>(?:^|[?&;])(?:password|passwd|pass|pwd|token|access_token|key|apikey|api_key|"
    r"secret|auth|signature|sig)=)(?P<value>[^&;#]*)",
    re.IGNORECASE,
)
_URL_IN_TEXT = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*://\S+")
MIN_SECRET_LEN = 4


def redact_url(url: str | int) -> str:
    """Return ``url`` with userinfo replaced by ``***`` and credential query values masked.

    Non-URLs (file paths, webcam indices) are returned unchanged as strings.
    """
    text = str(url)
    match = _SCHEME.match(text)
    if not match:
        return text
    head = match.group(0)
    rest = text[len(head) :]
    rest = _strip_userinfo(rest)
    return head + _mask_query(rest)


def _strip_userinfo(rest: str) -> str:
    """Cut everything up to the last ``@`` that is followed by a host-shaped authority."""
    for at in _at_positions_descending(rest):
        if _HOST_AFTER_AT.match(rest, at + 1):
            return f"{MASK}@{rest[at + 1 :]}"
    return rest


def _at_positions_descending(rest: str) -> list[int]:
    return [i for i in range(len(rest) - 1, -1, -1) if rest[i] == "@"]


def _mask_query(rest: str) -> str:
    start = min((i for i in (rest.find("?"), rest.find(";")) if i >= 0), default=-1)
    if start < 0:
        return rest
    query = _SECRET_PARAMS.sub(lambda m: m.group("key") + MASK, rest[start:])
    return rest[:start] + query


def redact_text(text: str, secrets: Iterable[str] = ()) -> str:
    """Scrub ``text``: every known secret (raw or percent-encoded) and every URL's userinfo.

    Secrets shorter than ``MIN_SECRET_LEN`` are skipped, because masking every occurrence of
    a one- or two-character string would destroy the message without protecting anything;
    URLs carrying such a password are still caught by the userinfo rule.
    """
    for secret in secret_variants(secrets):
        text = text.replace(secret, MASK)
    return _URL_IN_TEXT.sub(lambda m: redact_url(m.group(0)), text)


def secret_variants(secrets: Iterable[str]) -> list[str]:
    """Each secret raw and percent-encoded, longest first; too-short ones dropped."""
    variants: set[str] = set()
    for secret in secrets:
        if not secret or len(secret) < MIN_SECRET_LEN:
            continue
        variants.update({secret, quote(secret, safe=""), quote(secret), quote(secret, safe="/:")})
    # longest first so that an encoded form is not half-replaced by a shorter raw one
    return sorted(variants, key=len, reverse=True)


def url_secrets(url: str) -> list[str]:
    """The password in every spelling it may appear in (raw, percent-decoded)."""
    try:
        password = urlsplit(url).password
    except ValueError:
        return []
    if not password:
        return []
    return sorted({password, unquote(password)}, key=len, reverse=True)
