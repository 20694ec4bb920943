"""``${ENV_VAR}`` substitution in config strings.

Secrets (camera passwords, webhook keys) stay out of the YAML file and come from the
environment. An unknown variable is an error rather than an empty string, because an empty
password silently turns into an authentication failure hours later on a camera far away.
``$${NAME}`` is an escape for a literal ``${NAME}``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

_PLACEHOLDER = re.compile(r"\$(\$?)\{([^}]*)\}")
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


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

    def replace(match: re.Match[str]) -> str:
        escaped, name = match.group(1), match.group(2)
        if escaped:
            return "${" + name + "}"
        if not _NAME.match(name):
            raise UnknownVariable(name, malformed=True)
        if name not in env:
            raise UnknownVariable(name)
        value = env[name]
        if used is not None:
            used.append(value)
        return value

    return _PLACEHOLDER.sub(replace, text)
