"""``backend: auto`` + ``precision: auto``: one measured probe over backends × precisions ×
threads, cached per CPU and library versions.

Why measured: which runtime is fastest depends on the CPU (AMX/VNNI/bf16 or not), on the
library versions and on how many cores the other processes leave (two threads under capture
load can be slower than one). The probe times the architecture cut to two transformer layers
(``clip_factory.probe_tower``), random weights, every candidate interleaved round by round so
a load spike hits all alike; a lossy candidate must keep cosine ≥ ``COSINE_GATE`` to fp32 and
beat torch fp32 by ``MIN_GAIN``. The decision is logged; the full matrix is cached in
``$XDG_CACHE_HOME/vadmon/encoder_probe.json`` and re-measured when the key changes.
"""

from __future__ import annotations

import hashlib
import logging
import os
import platform
import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn

from vadmon.encoder import openvino_backend
from vadmon.model import precision as tp

log = logging.getLogger("vadmon.encoder.probe")

PROBE_VERSION = 2
PRECISIONS = ("fp32", "bf16", "int8")


@dataclass(frozen=True)
class Choice:
    backend: str
    precision: str
    threads: int | None  # None: keep the configured/default threads


@dataclass
class Matrix:
    """One machine's measurement: ``"backend/precision/threads"`` → images/s and cosine."""

    key: str
    images_per_s: dict[str, float]
    cosine_min: dict[str, float]
    cpu_model: str
    probe_s: float


def thread_counts(fixed: int | None) -> tuple[int, ...]:
    cpus = os.cpu_count() or 1
    counts = {1, min(2, cpus)} | ({fixed} if fixed else set())
    return tuple(sorted(counts))


def machine_key(arch: str, threads: tuple[int, ...]) -> str:
    libs = (
        openvino_backend.versions()
        if openvino_backend.available()
        else f"torch {torch.__version__}"
    )
    parts = (f"encprobe{PROBE_VERSION}", tp.cpu_model(), libs, platform.machine(), threads, arch)
    return "|".join(str(p) for p in parts)


def _cells(tower: nn.Module, size: int, threads: tuple[int, ...]) -> dict[str, Callable]:
    cells: dict[str, Callable] = {}
    for t in threads:
        for p in PRECISIONS:
            cells[f"torch/{p}/{t}"] = tp._variant(tower, p)
    if openvino_backend.available():
        fp32 = openvino_backend.convert(tower, size)
        int8 = openvino_backend.quantize(fp32, tp._probe_images(size, 8))
        for t in threads:
            for p in PRECISIONS:
                compiled = openvino_backend.compile_model(int8 if p == "int8" else fp32, p, t)
                cells[f"openvino/{p}/{t}"] = openvino_backend.OpenVinoEncoder(compiled, p, t).encode
    return cells


def measure(
    tower: nn.Module, size: int, key: str, threads: tuple[int, ...], repeats: int = 5
) -> Matrix:
    """Every cell timed round by round; torch's thread count is set once per block of cells
    (switching it per call would cost more than a small tower's forward)."""
    images = tp._probe_images(size)
    started = time.perf_counter()
    before = torch.get_num_threads()
    times: dict[str, list[float]] = {}
    cosine: dict[str, float] = {}
    try:
        with torch.inference_mode():
            cells = _cells(tower.float().eval(), size, threads)
            ref = tower(images).float()
            for rnd in range(repeats + 1):
                for t in threads:
                    torch.set_num_threads(t)
                    for name, run in cells.items():
                        if not name.endswith(f"/{t}"):
                            continue
                        t0 = time.perf_counter()
                        out = run(images)
                        if rnd == 0:  # warm-up round: the cosine, not the time
                            cos = F.cosine_similarity(out, ref, dim=-1).min()
                            cosine[name] = round(float(cos), 6)
                        else:
                            times.setdefault(name, []).append(time.perf_counter() - t0)
    finally:
        torch.set_num_threads(before)
    speed = {n: round(len(images) / statistics.median(t), 3) for n, t in times.items()}
    return Matrix(key, speed, cosine, tp.cpu_model(), round(time.perf_counter() - started, 2))


def choose(m: Matrix, backends: tuple[str, ...], precisions: tuple[str, ...],
           threads: tuple[int, ...]) -> Choice:  # fmt: skip
    """The fastest allowed cell that passes the cosine gate and beats torch fp32 by MIN_GAIN."""
    base = max((m.images_per_s.get(f"torch/fp32/{t}", 0.0), t) for t in threads)
    exact_allowed = "torch" in backends and "fp32" in precisions
    best, best_speed = None, base[0] * tp.MIN_GAIN if exact_allowed else 0.0
    for name, speed in m.images_per_s.items():
        backend, precision, t = name.split("/")
        if backend not in backends or precision not in precisions or int(t) not in threads:
            continue
        if m.cosine_min.get(name, 0.0) >= tp.COSINE_GATE and speed >= best_speed:
            best, best_speed = Choice(backend, precision, int(t)), speed
    if best is None:
        fallback = "fp32" if "fp32" in precisions else precisions[0]
        backend = "torch" if "torch" in backends else backends[0]
        return Choice(backend, fallback, base[1])
    return best


def _cache_path():
    from pathlib import Path

    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "vadmon" / "encoder_probe.json"


def cached_matrix(
    arch: str, tower: Callable[[], tuple[nn.Module, int]], fixed: int | None
) -> Matrix:
    threads = thread_counts(fixed)
    key = machine_key(arch, threads)
    path = _cache_path()
    entries = tp._read_cache(path)
    entry_id = hashlib.sha256(key.encode()).hexdigest()[:16]
    found = entries.get(entry_id)
    if isinstance(found, dict) and found.get("key") == key:
        try:
            return Matrix(**found)
        except TypeError:
            pass
    module, size = tower()
    log.info("encoder probe: timing torch/openvino × fp32/bf16/int8 × threads %s", threads)
    matrix = measure(module, size, key, threads)
    entries[entry_id] = asdict(matrix)
    tp._write_cache(path, entries)
    return matrix


def summary(m: Matrix) -> str:
    return ", ".join(
        f"{n} {v:.1f} img/s cos {m.cosine_min[n]:.4f}" for n, v in m.images_per_s.items()
    )


def resolve(backend: str, precision: str, arch: str, tower: Callable[[], tuple[nn.Module, int]],
            fixed_threads: int | None) -> Choice:  # fmt: skip
    """A concrete (backend, precision, threads) on CPU for ``backend`` auto|openvino."""
    backends = ("torch", "openvino") if backend == "auto" else (backend,)
    if not openvino_backend.available():
        backends = tuple(b for b in backends if b != "openvino") or backends
    precisions = PRECISIONS if precision == "auto" else (precision,)
    if backends == ("openvino",) and precision != "auto":
        return Choice("openvino", precision, None)
    matrix = cached_matrix(arch, tower, fixed_threads)
    allowed = (fixed_threads,) if fixed_threads else thread_counts(None)
    choice = choose(matrix, backends, precisions, allowed)
    log.info("encoder auto → %s %s, %s thread(s) (probe on %s: %s)", choice.backend,
             choice.precision, choice.threads, matrix.cpu_model, summary(matrix))  # fmt: skip
    return choice
