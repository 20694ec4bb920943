"""The link's back-channel: the inference host tells each capture host what it did with its
messages (issue 20, case 14: refusals were visible only on the inference host).

Why a second socket pair: the snippet link is PUSH → PULL, which carries nothing back. The
inference host binds a ROUTER beside its PULL (``transport.tcp.verdicts.bind``, by default the
snippet port + 1), a CURVE server in the same ZAP domain, so exactly the keys allowed to send
snippets may ask. Each capture process connects a DEALER (a CURVE client of the configured
server key) and says ``hello`` for its camera once a second; the ROUTER answers that connection,
and only it, with a ``verdict`` about what *that key* sent for *that camera*. A PUB would have
told every allowed host about every other host's cameras and could not answer one peer.

Trust, both ways:

- A capture host takes verdicts only over a CURVE session with the server key it is configured
  with (libzmq checks the server's key in the handshake: a forger without the server's secret
  key never gets a session, so not one of its bytes is read), only about its own camera, at most
  ``MAX_VERDICTS_PER_S`` a second, each at most ``MAX_VERDICT_BYTES``, with strict types; any
  other message is dropped and counted (``ignored`` by reason).
- The inference host answers only authenticated keys, only about what that key sent, at most
  one verdict per connection per ``ANSWER_EVERY_S``; a hello is at most ``MAX_HELLO_BYTES``.

The verdict counts are cumulative since the inference process started (a restart resets them;
the capture side rebases). Wire: ``[b"hello", JSON]`` and ``[b"verdict", JSON]``.
"""

from __future__ import annotations

import json
import re
from typing import Annotated, Literal, TypeVar, get_args

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError

from vadmon.errors import VadmonError

HELLO, VERDICT = b"hello", b"verdict"
MAX_HELLO_BYTES = 512
MAX_VERDICT_BYTES = 4096
SOCKET_MAX_BYTES = 64 * 1024  # libzmq's own cut (MAXMSGSIZE); above it the peer is dropped
MAX_VERDICTS_PER_S = 4.0  # capture side: more than this is a misbehaving server (dropped)
ANSWER_EVERY_S = 0.5  # inference side: at most one verdict per connection this often
HELLO_EVERY_S = 1.0  # capture side: ask this often (also how fresh a verdict is)

# why the inference host refused a message (vadmon.runtime.link.LinkServer.admit, and a camera
# the inference config does not have)
Reason = Literal["refused_camera", "clock_skew", "unknown_camera"]
REASONS: frozenset[str] = frozenset(get_args(Reason))
REASON_WORDS: dict[str, str] = {
    "refused_camera": "this host's key may not send this camera: bind it to this host's key "
    "in the inference host's transport.curve.client_cameras",
    "clock_skew": "dated too far ahead of the inference host's clock: check this host's "
    "clock (NTP)",
    "unknown_camera": "the inference host's config has no camera of this name",
}
Name = Annotated[str, StringConstraints(min_length=1, max_length=64)]
Count = Annotated[int, Field(ge=0, le=2**53)]


class _Wire(BaseModel):
    """Strict: no "3" for 3, no unknown keys (a verdict is ours or it is dropped)."""

    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)


class Hello(_Wire):
    camera: Name


class Verdict(_Wire):
    """What the inference host did with one key's messages (snippets and previews) for one
    camera: accepted by the link, refused by reason, and the reason of the latest refusal."""

    v: Literal[1] = 1
    camera: Name
    accepted: Count = 0
    refused: dict[Reason, Count] = Field(default_factory=dict, max_length=3)
    last_reason: Reason | Literal[""] = ""


W = TypeVar("W", bound=_Wire)


class VerdictError(ValueError):
    """A back-channel message that is not a valid hello or verdict; ``kind`` is its counter."""

    def __init__(self, kind: str) -> None:
        super().__init__(kind)
        self.kind = kind


def encode(kind: bytes, model: _Wire) -> list[bytes]:
    return [kind, model.model_dump_json().encode()]


def decode(parts: list[bytes], kind: bytes, model: type[W], max_bytes: int) -> W:
    """``parts`` (the routing frame already removed) → a valid model, or ``VerdictError``
    (``oversized`` / ``malformed``): nothing of an invalid message is used."""
    if len(parts) != 2 or parts[0] != kind:
        raise VerdictError("malformed")
    if len(parts[1]) > max_bytes:
        raise VerdictError("oversized")
    try:
        return model.model_validate(json.loads(parts[1]))
    except (ValueError, ValidationError, RecursionError):
        raise VerdictError("malformed") from None


# --- the capture process's heartbeat part (runtime/status_schema.CaptureInfo.link) ----------

Total = Annotated[float, Field(ge=0, allow_inf_nan=False)]
Short = Annotated[str, StringConstraints(max_length=64)]


class CaptureLink(BaseModel):
    """The latest verdict as the capture host shows it (dashboard row, /metrics)."""

    model_config = ConfigDict(strict=True, extra="ignore", frozen=True)

    accepted_total: Total = 0
    refused: dict[Short, Total] = Field(default_factory=dict, max_length=4)
    last_reason: Short = ""
    verdicts_total: Total = 0
    ignored: dict[Short, Total] = Field(default_factory=dict, max_length=8)  # dropped verdicts


# --- where the back-channel lives -----------------------------------------------------------

_TCP = re.compile(r"^(tcp://.+):(\d{1,5})$")


def next_port(endpoint: str, key: str) -> str:
    """``tcp://host:5555`` → ``tcp://host:5556``: the default verdict endpoint beside the link."""
    match = _TCP.match(endpoint)
    if match is None or not 0 < int(match.group(2)) < 65535:
        raise VadmonError(
            f"cannot put the link verdicts beside {endpoint!r} (port + 1)",
            key,
            "set it to a tcp://host:port of its own",
        )
    return f"{match.group(1)}:{int(match.group(2)) + 1}"
