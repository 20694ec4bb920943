"""Change gating: skip the image tower for a sampled frame that did not change (``change_gate:``).

Why here, between reading the frames and the CLIP forward: the batch across cameras shrinks to
the snippets that need the tower, and every snippet still leaves with an embedding in its own
place, so the scorer's windows (``SlidingWindow``: indices, gaps, segments) see a reused
embedding exactly as they see an encoded one. What is compared: a small grey thumbnail of each
sampled frame against the thumbnail of the last frame *encoded* for that camera (not the last
one seen, so a slow drift adds up until it is encoded). What counts as change: a pixel differing
by more than the camera's threshold, ``max(min_pixel_delta, noise_factor × floor)``, where the
floor is measured per camera from its first ``warmup_pairs`` consecutive sampled frames (the
quietest pair's median pixel difference: sensor and compression noise touch every pixel, motion
only some, and the quietest pair errs towards a lower floor, i.e. fewer skips). A frame is
unchanged when at most ``max_changed_fraction`` of the pixels changed; a snippet is reused only
when all its sampled frames are, and at most ``max_reuse`` times in a row.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import cv2
import numpy as np
import torch

Frames = Sequence[np.ndarray]
log = logging.getLogger("vadmon.inference.change_gate")


@dataclass(frozen=True)
class GateSettings:
    warmup_pairs: int
    noise_factor: float
    min_pixel_delta: float
    max_changed_fraction: float
    max_reuse: int
    thumb_width: int  # fixed by design (vadmon.settings.GATE_THUMB_WIDTH)


def thumbnail(frame: np.ndarray, width: int) -> np.ndarray:
    """Grey float32 thumbnail, area-averaged: averaging many pixels shrinks their noise."""
    grey = (
        frame if frame.ndim == 2 or frame.shape[2] == 1 else cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)
    )
    grey = grey.reshape(grey.shape[0], grey.shape[1]).astype(np.float32)
    height = max(1, round(grey.shape[0] * width / grey.shape[1]))
    return cv2.resize(grey, (width, height), interpolation=cv2.INTER_AREA)


@dataclass
class _Reference:
    """The last encoded snippet of a camera: its thumbnails and embedding (``row``: still in
    the batch being encoded, resolved when the tower answers)."""

    thumbs: list[np.ndarray]
    embedding: torch.Tensor | None = None
    row: int | None = None


@dataclass
class CameraGate:
    """One camera's noise floor, reference and counters."""

    floor_samples: list[float] = field(default_factory=list)
    floor: float | None = None
    last: np.ndarray | None = None  # previous sampled thumbnail (warm-up pairs)
    ref: _Reference | None = None
    run: int = 0  # snippets reused in a row
    reused: int = 0
    encoded: int = 0

    def threshold(self, s: GateSettings) -> float | None:
        return None if self.floor is None else max(s.min_pixel_delta, s.noise_factor * self.floor)

    def measure(self, thumbs: list[np.ndarray], s: GateSettings) -> None:
        """Warm-up: one floor sample per consecutive pair of sampled frames of equal shape."""
        for t in thumbs:
            if self.floor is None and self.last is not None and self.last.shape == t.shape:
                self.floor_samples.append(float(np.median(np.abs(t - self.last))))
                if len(self.floor_samples) >= s.warmup_pairs:
                    self.floor = min(self.floor_samples)
            self.last = t

    def unchanged(self, thumbs: list[np.ndarray], s: GateSettings) -> bool:
        limit = self.threshold(s)
        ref = self.ref
        if limit is None or ref is None or self.run >= s.max_reuse:
            return False
        if len(ref.thumbs) != len(thumbs) or any(
            a.shape != b.shape for a, b in zip(ref.thumbs, thumbs, strict=True)
        ):
            return False
        return all(
            float(np.mean(np.abs(a - b) > limit)) <= s.max_changed_fraction
            for a, b in zip(ref.thumbs, thumbs, strict=True)
        )


class ChangeGate:
    """Per-camera gates in front of one batched encode."""

    def __init__(self, settings: GateSettings) -> None:
        self.settings = settings
        self.cameras: dict[str, CameraGate] = {}

    def camera(self, name: str) -> CameraGate:
        return self.cameras.setdefault(name, CameraGate())

    def encode(
        self,
        ready: Sequence[tuple[object, Frames]],
        encode: Callable[[list[Frames]], torch.Tensor],
    ) -> torch.Tensor:
        """``ready[i] = (snippet, frames)`` → ``[len(ready), D]``, row i for snippet i, the
        tower run only on the snippets that changed (in order: a camera's second snippet in
        the batch is compared with its first when that one is encoded)."""
        s = self.settings
        plan: list[tuple[str, _Reference]] = []  # (camera, reference whose embedding it gets)
        todo: list[Frames] = []
        for msg, frames in ready:
            name = str(msg.camera)  # type: ignore[attr-defined]
            cam = self.camera(name)
            thumbs = [thumbnail(f, s.thumb_width) for f in frames]
            cam.measure(thumbs, s)
            if cam.unchanged(thumbs, s):
                cam.run += 1
                plan.append((name, cam.ref))
                continue
            cam.ref = _Reference(thumbs, row=len(todo))
            cam.run = 0
            todo.append(frames)
            plan.append((name, cam.ref))
        try:
            emb = encode(todo) if todo else None
        except Exception:
            for name, ref in plan:  # nothing half-resolved survives a failed batch
                if ref.row is not None:
                    self.cameras[name].ref = None
            raise
        rows = []
        for name, ref in plan:
            if ref.row is not None:
                ref.embedding, ref.row = emb[ref.row], None
                self.cameras[name].encoded += 1
            else:
                self.cameras[name].reused += 1
            rows.append(ref.embedding)
        return torch.stack(rows)

    def counters(self, name: str) -> dict[str, float]:
        """What the heartbeat shows per camera: snippets reused / encoded and the threshold."""
        cam = self.cameras.get(name)
        if cam is None:
            return {}
        limit = cam.threshold(self.settings)
        out: dict[str, float] = {"gate_reused": cam.reused, "gate_encoded": cam.encoded}
        if limit is not None:  # measured once the warm-up pairs are in
            out["gate_threshold"] = round(limit, 3)
        return out


def build_gate(settings: GateSettings | None, encoder) -> ChangeGate | None:
    """The loop's gate; none when ``change_gate`` is off, or when the tower is remote (its
    batches are in flight when the next snippet is compared, so there is no reference yet)."""
    if settings is None:
        return None
    if encoder.remote:
        log.warning("change_gate: not applied, the image tower is remote (%s)", encoder.status())
        return None
    log.info("change_gate: on (noise floor measured per camera over %d pairs)",
             settings.warmup_pairs)  # fmt: skip
    return ChangeGate(settings)
