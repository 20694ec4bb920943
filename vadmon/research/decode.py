"""The decoding thread of feature extraction: videos → preprocessed snippet crops on a queue.

Decoding (OpenCV) and CLIP preprocessing run here, in their own thread feeding a bounded queue,
so the encoder (``vadmon.research.extract``) never waits on I/O and memory stays bounded. A
broken video ends as a ``VideoEnd`` with its reason, never as an exception that stops the run.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch

from vadmon.model.crops import ClipPreprocess, crops_of
from vadmon.research.videos import VideoJob

SNIPPET_FRAMES = 16


@dataclass(frozen=True)
class Snippet:
    """The sampled frames of one snippet, cropped and preprocessed for CLIP."""

    video: int
    index: int
    images: torch.Tensor  # [n_crops * k, 3, S, S], crop-major


@dataclass(frozen=True)
class VideoEnd:
    """A video is done: how many snippets it gave, or why it failed."""

    video: int
    snippets: int
    error: str | None


DONE = object()  # the last item: every video has been decoded (or the run stops)


def decode_video(
    source: Path,
    crops: Sequence[int],
    offsets: Sequence[int],
    prep: ClipPreprocess,
    emit: Callable[[int, torch.Tensor], None],
    stop: threading.Event,
) -> tuple[int, str | None]:
    """Decode complete snippets of one video; returns (snippet count, error or None)."""
    cap = cv2.VideoCapture(str(source))
    if not cap.isOpened():
        return 0, "cannot open (corrupt or unsupported video)"
    wanted = set(offsets)
    count, pos, sampled = 0, 0, []
    try:
        while not stop.is_set():
            if pos in wanted:
                ok, frame = cap.read()
                if ok:
                    sampled.append(crops_of(frame, crops))
            else:
                ok = cap.grab()
            if not ok:
                break
            pos += 1
            if pos == SNIPPET_FRAMES:
                stack = np.stack(sampled, axis=1)  # [n_crops, k, 224, 224, 3]
                emit(count, prep(stack.reshape(-1, *stack.shape[2:])))
                count, pos, sampled = count + 1, 0, []
    except cv2.error as exc:
        return count, f"decode error: {exc}"
    finally:
        cap.release()
    if count == 0 and not stop.is_set():
        return 0, "no complete 16-frame snippet could be decoded"
    return count, None


def decode_videos(
    jobs: Sequence[VideoJob],
    crops: Sequence[int],
    offsets: Sequence[int],
    prep: ClipPreprocess,
    out: queue.Queue,
    stop: threading.Event,
) -> None:
    def put(item: object) -> None:
        while not stop.is_set():
            try:
                out.put(item, timeout=0.1)
                return
            except queue.Full:
                continue

    try:
        for vid, job in enumerate(jobs):
            if stop.is_set():
                break

            def emit(index: int, images: torch.Tensor, vid: int = vid) -> None:
                put(Snippet(vid, index, images))

            try:
                n, err = decode_video(job.source, crops, offsets, prep, emit, stop)
            except Exception as exc:  # a broken file must not end the run
                n, err = 0, f"{type(exc).__name__}: {exc}"
            put(VideoEnd(vid, n, err))
    finally:
        put(DONE)
