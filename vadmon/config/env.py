"""``${ENV_VAR}`` substitution in config strings.

Secrets (camera passwords, webhook keys) stay out of the YAML file and come from the
environment. An unknown variable is an error rather than an empty string, because an empty
password silently turns into an authentication failure hours later on a camera far away.
``$${NAME}`` is an escape for a literal ``${NAME}``.

A placeholder inside the user-info of a URL (``rtsp://${USER}:${PASS}@cam/``) is
percent-encoded as it is substituted: the environment holds the password as the camera knows
it (``p@ss:w/rd%``), and pasted raw into the URL its ``@ : / %`` would split the URL in the wrong
place (FFmpeg: "Port missing in uri"). Values are never encoded anywhere else.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from urllib.parse import quote

_PLACEHOLDER = re.compile(r"\$(\$?)\{([^}]*)\}")
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_URL_HEAD = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]*://")


class UnknownVariable(LookupError):
    """Raised for a placeholder whose variable is unset or whose name is malformed."""

    def __init__(self, name: str, malformed: bool = False) -> None:
        self.name = name
        self.malformed = malformed
        super().__init__(name)


def substitute(text: str, env: Mapping[str, str], used: list[str] | None = None) -> str:
    """Replace every ``${NAME}`` in ``text`` with ``env[NAME]``.

    Values that were substituted are appended to ``used`` so that callers can scrub them from
    error messages (they are usually secrets).
    """

    userinfo_end = _userinfo_end(text)

    def replace(match: re.Match[str]) -> str:
        escaped, name = match.group(1), match.group(2)
        if escaped:
            return "${" + name + "}"
        if not _NAME.match(name):
            raise UnknownVariable(name, malformed=True)
        if name not in env:
            raise UnknownVariable(name)
        value = env[name]
        if match.start() < userinfo_end:
            value = quote(value, safe="")
            if used is not None:
                used.append(env[name])
        if used is not None:
            used.append(value)
        return value

    return _PLACEHOLDER.sub(replace, text)


def _userinfo_end(template: str) -> int:
    """Offset of the ``@`` ending a URL's user-info in the *template* (-1: none).

    The template is parsed before substitution, where only the literal ``@`` the user typed
    can end the user-info; the authority ends at the first ``/ ? #`` after ``scheme://``."""
    head = _URL_HEAD.match(template)
    if head is None:
        return -1
    start = head.end()
    ends = [i for i in (template.find(c, start) for c in "/?#") if i >= 0]
    authority_end = min(ends, default=len(template))
    return template.rfind("@", start, authority_end)
