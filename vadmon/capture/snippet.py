"""Snippet assembly: group frames into 16-frame snippets and pick the frames to embed.

VadCLIP works on snippets of 16 frames and embeds k of them (k=1: the middle frame). Frames are
counted either one per source frame, or on a virtual clock at a configured fps (so a 30 fps and
a 10 fps camera both give snippets that span the same time): each tick of the clock takes the
first real frame at or after it, which skips frames when the source is faster and repeats one
when it is slower. Pure logic: no sockets, no clocks of its own, so it is tested directly.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from vadmon.runtime.messages import SnippetMessage


@dataclass(frozen=True)
class SnippetSettings:
    # the names of ``model.snippet_frames`` and ``model.frames_per_snippet``
    snippet_frames: int  # frames one snippet spans
    frames_per_snippet: int  # of those, the frames handed to the image encoder
    fps: float  # 0: count source frames; > 0: resample on a clock at this rate

    def __post_init__(self) -> None:
        if self.snippet_frames < 1:
            raise ValueError("snippet_frames must be at least 1")
        if not 1 <= self.frames_per_snippet <= self.snippet_frames:
            raise ValueError("frames_per_snippet must be between 1 and snippet_frames")
        if self.fps < 0:
            raise ValueError("fps must be >= 0")


def sample_positions(frames: int, samples: int) -> list[int]:
    """Evenly spaced positions, each at the centre of its 1/k share (k=1 → the middle)."""
    return [int((i + 0.5) * frames / samples) for i in range(samples)]


@dataclass(frozen=True)
class FrameRef:
    seq: int
    ts: float
    slot: int


@dataclass
class SnippetAssembler:
    """Feed frames with ``push``; returns a ``SnippetMessage`` each time a snippet completes."""

    camera: str
    settings: SnippetSettings
    snippet_index: int = 0
    _frames: list[FrameRef] = field(default_factory=list)
    _next_tick: float | None = None
    _ring: str = ""
    _shape: tuple[int, int, int] = (0, 0, 0)

    def reset(self) -> None:
        """Drop the partial snippet (source reconnected or ring replaced)."""
        self._frames.clear()
        self._next_tick = None

    def __post_init__(self) -> None:
        s = self.settings
        self._picks = frozenset(sample_positions(s.snippet_frames, s.frames_per_snippet))

    def push(
        self, seq: int, ts: float, slot: int, ring: str, shape: tuple[int, int, int]
    ) -> SnippetMessage | None:
        """Add one frame (``slot``: where it is in the ring; any value for a frame ``wants``
        said no to, since no snippet picks it); a completed snippet is returned."""
        if ring != self._ring or shape != self._shape:
            self.reset()
            self._ring, self._shape = ring, shape
        restart, count, self._next_tick = self._fill(ts, len(self._frames), self._next_tick)
        if restart:
            self._frames.clear()
        self._frames.extend([FrameRef(seq, ts, slot)] * count)
        if len(self._frames) < self.settings.snippet_frames:
            return None
        return self._emit()

    def wants(self, ts: float, ring: str, shape: tuple[int, int, int]) -> bool:
        """Whether the frame at ``ts`` lands on a position a snippet hands to the encoder (and
        so must be in the ring); asks only, changes nothing. With k=1 of 16 that is one frame
        in 16: the others need no 0.7 MB copy, and the ring keeps 16× longer what is read."""
        same = ring == self._ring and shape == self._shape
        filled = len(self._frames) if same else 0
        restart, count, _ = self._fill(ts, filled, self._next_tick if same else None)
        start = 0 if restart else filled
        return any(p in self._picks for p in range(start, start + count))

    def _fill(self, ts: float, filled: int, tick: float | None) -> tuple[bool, int, float | None]:
        """Where the frame at ``ts`` goes, given ``filled`` positions and the clock's next
        ``tick``: (restart the snippet first?, positions it fills, the next tick after it).
        One position per frame at ``fps`` 0; on the clock each tick takes the first frame at or
        after it, which skips frames of a faster source and repeats those of a slower one."""
        if self.settings.fps <= 0:
            return False, 1, None
        period = 1.0 / self.settings.fps
        tick = ts if tick is None else tick
        if ts + 1e-9 < tick:
            return False, 0, tick  # source faster than the clock: skip this frame
        # a gap longer than one snippet is a restart, not something to fill with copies
        restart = ts - tick > period * self.settings.snippet_frames
        if restart:
            filled, tick = 0, ts
        count = 0
        while tick <= ts + 1e-9 and filled + count < self.settings.snippet_frames:
            count += 1
            tick += period
        return restart, count, tick

    def _emit(self) -> SnippetMessage:
        frames = self._frames[: self.settings.snippet_frames]
        picks = [
            frames[i]
            for i in sample_positions(
                self.settings.snippet_frames, self.settings.frames_per_snippet
            )
        ]
        msg = SnippetMessage(
            camera=self.camera,
            snippet_index=self.snippet_index,
            t_start=frames[0].ts,
            t_end=frames[-1].ts,
            ring=self._ring,
            height=self._shape[0],
            width=self._shape[1],
            slots=[p.slot for p in picks],
            seqs=[p.seq for p in picks],
            channels=self._shape[2],
            frames_in_snippet=self.settings.snippet_frames,
        )
        self.snippet_index += 1
        self._frames = self._frames[self.settings.snippet_frames :]
        return msg
