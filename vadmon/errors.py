"""One error type for everything a user can get wrong.

The CLI turns a ``VadmonError`` into a single line (what, where, how to fix) and a non-zero
exit code, so bad input never produces a traceback.
"""

from __future__ import annotations


class VadmonError(Exception):
    """A user-facing error: what went wrong, where, and how to fix it."""

    def __init__(self, what: str, where: str = "", fix: str = "") -> None:
        self.what = what
        self.where = where
        self.fix = fix
        super().__init__(self.line())

    def line(self) -> str:
        parts = [self.what]
        if self.where:
            parts.append(f"in {self.where}")
        text = ": ".join([parts[0], parts[1]]) if len(parts) > 1 else parts[0]
        if self.fix:
            text += f" — {self.fix}"
        return text
