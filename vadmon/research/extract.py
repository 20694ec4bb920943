"""Offline feature extraction: videos → per-crop CLIP snippet embeddings in the published layout.

Output, per video ``<input dir>/<rel dir>/<name>.<ext>``::

    <out>/<rel dir>/<name>__<crop>.npy      float32 [T, D], T = frames // 16
    <out>/list.csv                          path,label — every crop file of every video
    <out>/list__<crop>.csv                  path,label — one crop only (what test lists use)

Paths in the lists are absolute, as in the published ``*_CLIP_rgb*.csv`` files.

Snippets: row ``i`` covers frames ``16i … 16i+15``. A trailing partial snippet is dropped (the
published features have ``frames // 16`` rows). Within a snippet ``k = frames_per_snippet``
frames are encoded at offsets ``⌊(j + ½)·16/k⌋`` (k=1 → the middle frame, offset 8; k=16 → all
sixteen) and their embeddings averaged. Each sampled frame costs one CLIP encode per crop, so
``10crop`` with k frames costs 10·k encodes per snippet.

Decoding (OpenCV) and CLIP preprocessing run in a separate thread that feeds a bounded queue, so
the encoder does not wait on I/O and memory stays bounded. Each output file is written under a
temporary name in its own directory and renamed into place, so an interrupted run leaves either
complete files or stale temporaries; a re-run removes the temporaries, skips videos whose files
all exist, and redoes the rest. Unreadable videos are reported and skipped.
"""

from __future__ import annotations

import csv
import io
import os
import queue
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from vadmon.model.crops import ClipPreprocess, crop_indices
from vadmon.research.decode import DONE, SNIPPET_FRAMES, Snippet, VideoEnd, decode_videos
from vadmon.research.provenance import FeatureOrigin, write_sidecar
from vadmon.research.videos import LabelFn, VideoJob, label_from_parent, plan_jobs

TMP_SUFFIX = ".tmp"

Encode = Callable[[torch.Tensor], torch.Tensor]


@dataclass
class ExtractSummary:
    """What a run did; ``failed`` holds (video, reason)."""

    extracted: list[Path] = field(default_factory=list)
    skipped: list[Path] = field(default_factory=list)
    failed: list[tuple[Path, str]] = field(default_factory=list)
    snippets: int = 0
    seconds: float = 0.0
    lists: list[Path] = field(default_factory=list)

    def report(self) -> str:
        rate = self.snippets / self.seconds if self.seconds > 0 else 0.0
        lines = [
            f"extracted {len(self.extracted)} videos ({self.snippets} snippets, {rate:.1f}/s), "
            f"skipped {len(self.skipped)} already done, failed {len(self.failed)}"
        ]
        lines += [f"  failed: {path}: {reason}" for path, reason in self.failed]
        return "\n".join(lines)


def snippet_offsets(frames_per_snippet: int) -> tuple[int, ...]:
    """Frame offsets inside a 16-frame snippet that get encoded (evenly spaced, centred)."""
    k = frames_per_snippet
    if not 1 <= k <= SNIPPET_FRAMES:
        raise ValueError(f"frames_per_snippet must be 1..{SNIPPET_FRAMES}, got {k}")
    return tuple(int((j + 0.5) * SNIPPET_FRAMES / k) for j in range(k))


def feature_origin(
    *,
    clip_arch: str,
    clip_pretrained: str | None,
    clip_checksum: str,
    embed_dim: int,
    preprocess: ClipPreprocess,
    crop_mode: str,
    frames_per_snippet: int,
    precision: str = "fp32",
) -> FeatureOrigin:
    """The sidecar record of one extraction (see ``vadmon.research.provenance``)."""
    return FeatureOrigin(
        clip_arch=clip_arch,
        clip_pretrained=clip_pretrained or None,
        clip_checksum=clip_checksum,
        embed_dim=embed_dim,
        image_size=preprocess.size,
        mean=tuple(preprocess.mean),
        std=tuple(preprocess.std),
        crop_mode=crop_mode,
        crops=crop_indices(crop_mode),
        snippet_frames=SNIPPET_FRAMES,
        frames_per_snippet=frames_per_snippet,
        frame_offsets=snippet_offsets(frames_per_snippet),
        precision=precision,
    )


# --------------------------------------------------------------------------- encoding side


def _atomic_save(path: Path, array: np.ndarray) -> None:
    tmp = path.with_name(path.name + TMP_SUFFIX)
    buf = io.BytesIO()
    np.save(buf, array)
    with open(tmp, "wb") as f:
        f.write(buf.getbuffer())
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def _write_list(path: Path, rows: Sequence[tuple[Path, str]]) -> None:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["path", "label"])
    writer.writerows((str(p.resolve()), label) for p, label in rows)
    tmp = path.with_name(path.name + TMP_SUFFIX)
    tmp.write_text(buf.getvalue(), encoding="utf-8")
    os.replace(tmp, path)


class _Encoder:
    """Batches images across snippets and videos, encodes, and reassembles per-video arrays."""

    def __init__(self, encode: Encode, batch_size: int, n_crops: int, k: int) -> None:
        self.encode, self.batch_size, self.n_crops, self.k = encode, batch_size, n_crops, k
        self.images: list[torch.Tensor] = []
        self.owners: list[tuple[int, int]] = []  # (video, snippet) per pending image
        self.partial: dict[tuple[int, int], list[torch.Tensor]] = {}
        self.rows: dict[int, dict[int, torch.Tensor]] = {}
        self.batches = 0
        self.discarded: set[int] = set()

    def discard(self, video: int) -> None:
        """Forget a failed video (its snippets may still be pending)."""
        self.discarded.add(video)
        self.rows.pop(video, None)

    def add(self, snippet: Snippet) -> None:
        self.images.append(snippet.images)
        self.owners += [(snippet.video, snippet.index)] * snippet.images.shape[0]
        while len(self.owners) >= self.batch_size:
            self._run(self.batch_size)

    def flush(self) -> None:
        if self.owners:
            self._run(len(self.owners))

    def _run(self, n: int) -> None:
        x = torch.cat(self.images) if len(self.images) > 1 else self.images[0]
        batch, rest = x[:n], x[n:]
        owners, self.owners = self.owners[:n], self.owners[n:]
        self.images = [rest] if rest.shape[0] else []
        with torch.inference_mode():
            emb = self.encode(batch).detach().to("cpu", torch.float32)
        self.batches += 1
        per = self.n_crops * self.k
        for i, key in enumerate(owners):
            if key[0] in self.discarded:
                continue
            got = self.partial.setdefault(key, [])
            got.append(emb[i])
            if len(got) == per:
                del self.partial[key]
                snippet = torch.stack(got).view(self.n_crops, self.k, -1).mean(dim=1)
                self.rows.setdefault(key[0], {})[key[1]] = snippet

    def take(self, video: int, snippets: int) -> torch.Tensor | None:
        """``[T, n_crops, D]`` once all ``snippets`` of ``video`` are encoded, else None."""
        done = self.rows.get(video, {})
        if len(done) < snippets:
            return None
        rows = self.rows.pop(video, {})
        return torch.stack([rows[i] for i in range(snippets)])


def _progress_bar(enabled: bool):  # -> rich.progress.Progress | None
    if not enabled:
        return None
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    return Progress(
        TextColumn("[bold]extract"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("videos"),
        TextColumn("{task.fields[rate]:.1f} snippets/s"),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
    )


def _split_done(
    jobs: Sequence[VideoJob], out_dir: Path, crops: Sequence[int], summary: ExtractSummary
) -> list[VideoJob]:
    """Remove stale temporaries; record videos whose outputs all exist; return the rest."""
    todo = []
    for job in jobs:
        outs = job.outputs(out_dir, crops)
        for p in outs:
            p.with_name(p.name + TMP_SUFFIX).unlink(missing_ok=True)
        if all(p.is_file() for p in outs):
            summary.skipped.append(job.source)
        else:
            todo.append(job)
    return todo


class _Run:
    """The consumer side of one extraction: batches, writes finished videos, tracks progress."""

    def __init__(
        self,
        todo: Sequence[VideoJob],
        out_dir: Path,
        crops: Sequence[int],
        enc: _Encoder,
        summary: ExtractSummary,
        bar,
    ) -> None:
        self.todo, self.out_dir, self.crops, self.enc = todo, out_dir, crops, enc
        self.summary, self.bar = summary, bar
        self.ended: dict[int, int] = {}
        self.started = time.monotonic()
        self.task = None
        if bar is not None:
            done = len(summary.skipped)
            self.task = bar.add_task("extract", total=done + len(todo), completed=done, rate=0.0)

    def handle(self, item: Snippet | VideoEnd) -> None:
        if isinstance(item, Snippet):
            self.enc.add(item)
        elif item.error is not None:
            self.enc.discard(item.video)
            self.summary.failed.append((self.todo[item.video].source, item.error))
            self._advance()
        else:
            self.ended[item.video] = item.snippets
        self.write_ready()

    def write_ready(self) -> None:
        for vid in list(self.ended):
            rows = self.enc.take(vid, self.ended[vid])
            if rows is None:
                continue
            del self.ended[vid]
            job = self.todo[vid]
            (self.out_dir / job.rel_dir).mkdir(parents=True, exist_ok=True)
            for j, path in enumerate(job.outputs(self.out_dir, self.crops)):
                _atomic_save(path, rows[:, j].contiguous().numpy())
            self.summary.extracted.append(job.source)
            self.summary.snippets += rows.shape[0]
            self._advance()

    def _advance(self) -> None:
        if self.bar is not None:
            rate = self.summary.snippets / max(time.monotonic() - self.started, 1e-9)
            self.bar.update(self.task, advance=1, rate=rate)


def extract_videos(
    inputs: Sequence[Path],
    out_dir: Path,
    encode: Encode,
    *,
    preprocess: ClipPreprocess | None = None,
    crop_mode: str = "10crop",
    frames_per_snippet: int = 1,
    batch_size: int = 64,
    label_fn: LabelFn = label_from_parent,
    progress: bool = False,
    origin: FeatureOrigin | None = None,
) -> ExtractSummary:
    """Extract features of every video under ``inputs`` into ``out_dir`` (see module doc).

    ``encode`` maps a normalised float32 batch ``[N, 3, S, S]`` to embeddings ``[N, D]``;
    ``preprocess`` must describe the same model's input (``ClipPreprocess.from_cfg``).
    ``origin`` (``feature_origin``) is written to ``<out>/features.json`` before any video is
    decoded; an existing sidecar of another recipe stops the run with nothing written.
    Exceptions from ``encode`` stop the run; files of videos finished before stay valid.
    """
    crops = crop_indices(crop_mode)
    offsets = snippet_offsets(frames_per_snippet)
    if batch_size < 1:
        raise ValueError("batch_size must be ≥ 1")
    prep = preprocess or ClipPreprocess()
    jobs = plan_jobs(inputs, label_fn)
    if origin is not None:
        if origin.crops != crops or origin.frame_offsets != offsets:
            raise ValueError("origin does not describe this extraction's crops/sampling")
        write_sidecar(out_dir, origin)
    summary = ExtractSummary()
    todo = _split_done(jobs, out_dir, crops, summary)

    per_snippet = len(crops) * len(offsets)
    q: queue.Queue = queue.Queue(maxsize=max(4, 2 * batch_size // per_snippet + 1))
    stop = threading.Event()
    thread = threading.Thread(
        target=decode_videos,
        args=(todo, crops, offsets, prep, q, stop),
        name="vadmon-decode",
        daemon=True,
    )
    bar = _progress_bar(progress)
    if bar is not None:
        bar.start()
    run = _Run(
        todo, out_dir, crops, _Encoder(encode, batch_size, len(crops), len(offsets)), summary, bar
    )
    thread.start()
    try:
        while True:
            try:
                item = q.get(timeout=1.0)
            except queue.Empty:
                if thread.is_alive():
                    continue
                break  # defensive: the decoder always ends with DONE
            if item is DONE:
                break
            run.handle(item)
        run.enc.flush()
        run.write_ready()
    finally:
        stop.set()
        thread.join(timeout=10)
        if bar is not None:
            bar.stop()

    summary.seconds = time.monotonic() - run.started
    failed = {p for p, _ in summary.failed}
    summary.lists = _write_lists(out_dir, [j for j in jobs if j.source not in failed], crops)
    return summary


def _write_lists(out_dir: Path, jobs: Sequence[VideoJob], crops: Sequence[int]) -> list[Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    per_video = [(job, job.outputs(out_dir, crops)) for job in jobs]
    all_rows = [(p, job.label) for job, outs in per_video for p in outs]
    paths = [out_dir / "list.csv"]
    _write_list(paths[0], all_rows)
    for j, c in enumerate(crops):
        path = out_dir / f"list__{c}.csv"
        _write_list(path, [(outs[j], job.label) for job, outs in per_video])
        paths.append(path)
    return paths
