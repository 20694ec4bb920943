"""Typed messages between the vadmon processes.

Every message travels as ZeroMQ multipart ``[topic, json_header]`` or
``[topic, json_header, payload]``. Headers are small JSON objects decoded into frozen
dataclasses with explicit field checks, so a malformed or hostile peer can only ever produce a
``MessageError`` (which receivers count and drop) — never arbitrary objects, as pickle would.
Status beats are not here: every process sends its typed body (``runtime/status_schema``)
through ``runtime/heartbeat``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from typing import Any, ClassVar, TypeVar

MAX_HEADER_BYTES = 64 * 1024
MAX_PAYLOAD_BYTES = 8 * 1024 * 1024
MAX_FRAME_SIDE = 8192
MAX_CLASSES = 1024
MAX_PHRASES = 16
MAX_PHRASE_CHARS = 200


class MessageError(ValueError):
    """A message that does not match its schema; receivers count it and carry on."""


M = TypeVar("M", bound="Message")


def _check_type(name: str, value: Any, expected: Any) -> Any:
    """Validate one decoded JSON value against the dataclass annotation string."""
    if expected in ("str",):
        if not isinstance(value, str):
            raise MessageError(f"field {name!r} must be a string")
        return value
    if expected in ("int",):
        if isinstance(value, bool) or not isinstance(value, int):
            raise MessageError(f"field {name!r} must be an integer")
        return value
    if expected in ("float",):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise MessageError(f"field {name!r} must be a number")
        if not math.isfinite(float(value)):
            raise MessageError(f"field {name!r} must be finite")
        return float(value)
    if expected in ("bool",):
        if not isinstance(value, bool):
            raise MessageError(f"field {name!r} must be a boolean")
        return value
    if expected.startswith("list"):
        if not isinstance(value, list):
            raise MessageError(f"field {name!r} must be a list")
        return value
    if expected.startswith("dict"):
        if not isinstance(value, dict):
            raise MessageError(f"field {name!r} must be an object")
        return value
    return value


@dataclass(frozen=True)
class Message:
    """Base: JSON (de)serialisation with strict field validation."""

    topic: ClassVar[bytes] = b""

    def header(self) -> bytes:
        return json.dumps(asdict(self), separators=(",", ":")).encode()

    def to_parts(self, payload: bytes | memoryview | None = None) -> list[Any]:
        parts: list[Any] = [self.topic, self.header()]
        if payload is not None:
            parts.append(payload)
        return parts

    @classmethod
    def from_header(cls: type[M], raw: bytes) -> M:
        if len(raw) > MAX_HEADER_BYTES:
            raise MessageError(f"{cls.__name__} header too large ({len(raw)} bytes)")
        try:
            data = json.loads(raw)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise MessageError(f"{cls.__name__} header is not JSON: {exc}") from None
        if not isinstance(data, dict):
            raise MessageError(f"{cls.__name__} header must be a JSON object")
        kwargs: dict[str, Any] = {}
        for f in fields(cls):
            if f.name in data:
                kwargs[f.name] = _check_type(f.name, data[f.name], str(f.type))
        try:
            msg = cls(**kwargs)
        except TypeError as exc:
            raise MessageError(f"{cls.__name__}: {exc}") from None
        msg.validate()
        return msg

    def validate(self) -> None:
        """Semantic checks beyond types; subclasses extend."""

    def check_payload(self, payload: bytes | None) -> None:
        """Check the optional raw part against the header; subclasses that carry pixels extend."""


def check_frame_shape(height: int, width: int, channels: int) -> None:
    if not (0 < height <= MAX_FRAME_SIDE and 0 < width <= MAX_FRAME_SIDE):
        raise MessageError(f"frame size {width}x{height} out of range")
    if channels not in (1, 3):
        raise MessageError(f"frame channels {channels} not 1 or 3")


def check_frames_payload(
    payload: bytes | None, frames: int, height: int, width: int, channels: int
) -> None:
    """Raw frames riding along must be exactly ``frames`` uint8 images of the header's shape."""
    expected = frames * height * width * channels
    if payload is not None and len(payload) != expected:
        raise MessageError(
            f"payload has {len(payload)} bytes, header says {frames} frame(s) of "
            f"{height}x{width}x{channels} = {expected}"
        )


@dataclass(frozen=True)
class SnippetMessage(Message):
    """A completed snippet: the ring slots (with their seqs) of the frames sampled from it."""

    topic: ClassVar[bytes] = b"snippet"
    camera: str
    snippet_index: int
    t_start: float
    t_end: float
    ring: str
    height: int
    width: int
    slots: list[int] = field(default_factory=list)
    seqs: list[int] = field(default_factory=list)
    channels: int = 3
    frames_in_snippet: int = 16
    held: bool = False  # held by capture while inference loaded its model: old, still scored

    def validate(self) -> None:
        check_frame_shape(self.height, self.width, self.channels)
        if not isinstance(self.held, bool):
            raise MessageError("held must be a boolean")
        if not self.slots or len(self.slots) != len(self.seqs) or len(self.slots) > 64:
            raise MessageError("slots/seqs must be non-empty lists of equal length ≤ 64")
        if any(not isinstance(s, int) or isinstance(s, bool) or s < 0 for s in self.slots):
            raise MessageError("slots must be non-negative integers")
        if any(not isinstance(s, int) or isinstance(s, bool) or s < 0 for s in self.seqs):
            raise MessageError("seqs must be non-negative integers")

    def frame_bytes(self) -> int:
        return self.height * self.width * self.channels

    def check_payload(self, payload: bytes | None) -> None:
        """Across hosts (no shared memory) the sampled frames ride along as one raw part:
        exactly ``len(slots)`` uint8 frames of ``height×width×channels``, nothing else."""
        check_frames_payload(payload, len(self.slots), self.height, self.width, self.channels)


@dataclass(frozen=True)
class ScoreMessage(Message):
    """Per-snippet result published by inference for the alert process and the dashboard."""

    topic: ClassVar[bytes] = b"score"
    camera: str
    snippet_index: int
    t_start: float
    t_end: float
    score: float
    fine: float
    class_names: list[str] = field(default_factory=list)
    class_probs: list[float] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    mode: str = "vadclip"
    t_emitted: float = 0.0
    phrases: list[str] = field(default_factory=list)  # top-k phrase-bank matches, best first
    phrase_probs: list[float] = field(default_factory=list)

    def validate(self) -> None:
        if len(self.class_names) != len(self.class_probs) or len(self.class_names) > MAX_CLASSES:
            raise MessageError("class_names and class_probs must have the same length")
        if not all(isinstance(c, str) for c in self.class_names):
            raise MessageError("class_names must be strings")
        if not all(isinstance(p, (int, float)) and math.isfinite(p) for p in self.class_probs):
            raise MessageError("class_probs must be finite numbers")
        if len(self.phrases) != len(self.phrase_probs) or len(self.phrases) > MAX_PHRASES:
            raise MessageError(f"phrases and phrase_probs: same length, at most {MAX_PHRASES}")
        if not all(isinstance(s, str) and len(s) <= MAX_PHRASE_CHARS for s in self.phrases):
            raise MessageError(f"phrases must be strings of at most {MAX_PHRASE_CHARS} chars")
        if not all(
            isinstance(p, (int, float)) and math.isfinite(p) and 0 <= p <= 1
            for p in self.phrase_probs
        ):
            raise MessageError("phrase_probs must be numbers in [0, 1]")

    def top_class(self, skip: tuple[str, ...] = ("normal",)) -> tuple[str, float]:
        """Most probable class outside ``skip`` (the normal class is never an alert label)."""
        best = ("", 0.0)
        for name, prob in zip(self.class_names, self.class_probs, strict=True):
            if name.lower() in skip:
                continue
            if prob > best[1] or not best[0]:
                best = (name, float(prob))
        return best


@dataclass(frozen=True)
class ProvisionalScore(ScoreMessage):
    """The lookahead-0 score of the newest snippet, read from the window that gave the final
    scores (``vadmon.inference.provisional``); only the provisional alert stage uses it."""

    topic: ClassVar[bytes] = b"provisional"


@dataclass(frozen=True)
class PreviewFrame(Message):
    """A downscaled JPEG of a recent frame; the alert process keeps these for snapshots/clips."""

    topic: ClassVar[bytes] = b"preview"
    camera: str
    seq: int
    ts: float
    height: int
    width: int

    def validate(self) -> None:
        check_frame_shape(self.height, self.width, 3)


TOPICS: Mapping[bytes, type[Message]] = {
    cls.topic: cls for cls in (SnippetMessage, ScoreMessage, ProvisionalScore, PreviewFrame)
}


def decode(
    parts: list[bytes], topics: Mapping[bytes, type[Message]] = TOPICS
) -> tuple[Message, bytes | None]:
    """Decode a multipart message; raises ``MessageError`` for anything malformed. ``topics``:
    the message types accepted (a bench adds its own, e.g. ``bench/zmq_frames.FrameHeader``)."""
    if not 2 <= len(parts) <= 3:
        raise MessageError(f"expected 2 or 3 message parts, got {len(parts)}")
    cls = topics.get(bytes(parts[0]))
    if cls is None:
        raise MessageError(f"unknown topic {bytes(parts[0])[:32]!r}")
    payload = bytes(parts[2]) if len(parts) == 3 else None
    if payload is not None and len(payload) > MAX_PAYLOAD_BYTES:
        raise MessageError(f"payload too large ({len(payload)} bytes)")
    msg = cls.from_header(bytes(parts[1]))
    msg.check_payload(payload)
    return msg, payload
