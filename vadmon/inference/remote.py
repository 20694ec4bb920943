"""Snippets encoded on a remote image tower (Triton) while the loop goes on.

Why a pipeline: a remote encoder answers over the network; waiting for it would leave the
adapter idle, and the adapter step waiting would leave the server idle. ``submit`` sends the
batch and returns; ``completed`` hands back answered batches in the order they were sent (per
camera, snippets must reach the sliding windows in order), waiting for the oldest only when
``max_in_flight`` are out. A batch the server failed comes back as its exception, and the loop
counts its snippets as dropped (reason ``encoder``).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any

import numpy as np
import torch

from vadmon.errors import VadmonError
from vadmon.inference.embedding import SnippetEncoder


class PipelinedEncoder(SnippetEncoder):
    """``SnippetEncoder`` whose image tower is a remote backend with ``submit``/``status``."""

    remote = True

    def __init__(self, clip: torch.nn.Module, backend, max_in_flight: int, wait_s: float) -> None:
        super().__init__(clip)
        self.backend = backend
        self.max_in_flight = max_in_flight
        self.wait_s = wait_s  # the backend's own deadline fails a future sooner; a safety net
        self._queue: deque[tuple[Any, list[int], Future]] = deque()

    def encode(self, snippets: Sequence[Sequence[np.ndarray]]) -> torch.Tensor:
        """Synchronous form (calibration, offline scoring): one batch, waited for."""
        counts, images = self._images(snippets)
        try:
            emb = self.backend.encode(images)
        except Exception as exc:  # noqa: BLE001 - a failed batch, whatever the transport raised
            raise VadmonError(f"the image tower did not answer ({exc})", "model.encoder") from None
        return _means(emb, counts)

    def _images(self, snippets: Sequence[Sequence[np.ndarray]]) -> tuple[list[int], torch.Tensor]:
        counts = [len(s) for s in snippets]
        return counts, self.prepare([f for s in snippets for f in s])

    def submit(self, tag: Any, snippets: Sequence[Sequence[np.ndarray]]) -> None:
        counts, images = self._images(snippets)
        self._queue.append((tag, counts, self.backend.submit(images)))

    def completed(self) -> list[tuple[Any, torch.Tensor | Exception]]:
        """Answered batches, oldest first: ``(tag, [n_snippets, D])`` or ``(tag, error)``."""
        out = []
        while self._queue:
            tag, counts, fut = self._queue[0]
            if not fut.done() and len(self._queue) <= self.max_in_flight:
                break
            self._queue.popleft()
            try:
                out.append((tag, _means(fut.result(timeout=self.wait_s), counts)))
            except (FutureTimeout, Exception) as exc:  # noqa: BLE001 - any failure drops the batch
                out.append((tag, exc))
        return out

    def in_flight(self) -> int:
        return len(self._queue)

    def status(self) -> str:
        return self.backend.status()


def _means(emb: torch.Tensor, counts: list[int]) -> torch.Tensor:
    """A snippet's embedding is the mean over its sampled frames."""
    return torch.stack([chunk.mean(0) for chunk in torch.split(emb, counts)])
