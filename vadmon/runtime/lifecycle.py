"""Explicit lifecycles: a state enum plus a transition table a reader can edit.

A lifecycle kept in flags (``suppressed``, ``event is None``, a bare ``"backoff"`` string)
lets any line put an object into any state; the question "can a stopped child restart?" then
has no answer short of reading every assignment. Here the answer is one row of a table, and
a move the table does not list raises ``IllegalTransition`` — a programming error, found by
the tests instead of shown as a strange state on the dashboard.

Used by the child processes' lifecycle (``runtime/child.py``), the alert event's
(``alerts/lifecycle.py``) and the outbox's event rows. To add a state (say, a parked camera),
add the enum member and its row; the table refuses to build when a state has no row.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Generic, TypeVar

S = TypeVar("S", bound=StrEnum)


class IllegalTransition(RuntimeError):
    """A move the transition table does not allow (a bug in the caller, not bad input)."""


@dataclass(frozen=True)
class Transitions(Generic[S]):
    """``table[state]``: the states that may follow ``state`` (empty: a final state)."""

    name: str
    table: Mapping[S, frozenset[S]]

    @classmethod
    def of(cls, name: str, table: Mapping[S, Iterable[S]]) -> Transitions[S]:
        """Build from a readable literal, checking that every state of the enum has a row and
        that the rows name only states of that enum."""
        rows = {state: frozenset(nexts) for state, nexts in table.items()}
        if not rows:
            raise ValueError(f"{name}: empty transition table")
        members = set(type(next(iter(rows))))
        missing = members - set(rows)
        unknown = {s for nexts in rows.values() for s in nexts} - members
        if missing or unknown:
            raise ValueError(f"{name}: states without a row {sorted(missing)}, unknown {unknown}")
        return cls(name, rows)

    def allows(self, current: S, new: S) -> bool:
        return new in self.table[current]

    def check(self, current: S, new: S) -> S:
        """``new`` when the table allows ``current → new``; raises ``IllegalTransition``."""
        if not self.allows(current, new):
            allowed = ", ".join(sorted(self.table[current])) or "nothing (final)"
            raise IllegalTransition(
                f"{self.name}: {current} → {new} is not a transition (from {current}: {allowed})"
            )
        return new

    def final(self, state: S) -> bool:
        return not self.table[state]
