"""Measurement and result records shared by all benchmarks.

Every figure is reported twice: the absolute number and a ratio against a baseline measured in
the same run, so results from a shared or throttled machine still compare variants fairly.
"""

from __future__ import annotations

import datetime as dt
import os
import platform
import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch

from vadmon.model.precision import BF16_CPU_FLAGS, cpu_has_native_bf16, cpu_model

SCHEMA = "vadmon-bench/1"


@dataclass
class BenchOptions:
    quick: bool = False
    threads: int = 0  # 0: torch's default, recorded as the value actually used
    warmup: int = 1
    repeats: int = 5
    budget_s: float = 20.0  # soft time budget per measured cell (fewer repeats when slow)
    compile_budget_s: float = 240.0
    batches: tuple[int, ...] | None = None  # clip batch sizes (None: the benchmark's own)
    encoder: str | None = None  # monitor: model.encoder.backend (None: the config default)
    cameras: tuple[int, ...] | None = None  # monitor: camera counts to run (None: stepping)
    model_threads: int | None = None  # monitor: model.threads (None: the config's default)


@dataclass
class Timing:
    median_s: float
    min_s: float
    repeats: int


@dataclass
class Row:
    """One measured variant. ``ratio`` is "times better than ``baseline``" (>1: better)."""

    name: str
    group: str
    value: float | None
    unit: str
    ratio: float | None
    baseline: str
    params: dict[str, Any] = field(default_factory=dict)
    median_s: float | None = None
    repeats: int | None = None
    accuracy: dict[str, float] = field(default_factory=dict)
    reason: str | None = None  # why value is None (n/a)


@dataclass
class BenchResult:
    name: str
    description: str
    unit: str
    rows: list[Row]
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def measure(
    fn: Callable[[], object], warmup: int, repeats: int, budget_s: float = float("inf")
) -> Timing:
    """Median of ``repeats`` calls after ``warmup`` calls; fewer (≥ 2) when one call is slow."""
    first = 0.0
    for _ in range(max(1, warmup)):
        start = time.perf_counter()
        fn()
        first = time.perf_counter() - start
    count = max(2, min(repeats, int(budget_s / max(first, 1e-9))))
    times = []
    for _ in range(count):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return Timing(statistics.median(times), min(times), count)


def setup_threads(threads: int) -> int:
    if threads > 0:
        torch.set_num_threads(threads)
    return torch.get_num_threads()


def _cpu_flags() -> list[str]:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                flags = set(line.split(":", 1)[1].split())
                return sorted(f for f in flags if f in BF16_CPU_FLAGS or f.startswith("amx"))
    except OSError:
        pass
    return []


def environment(threads: int) -> dict[str, Any]:
    load = os.getloadavg() if hasattr(os, "getloadavg") else (0.0, 0.0, 0.0)
    return {
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "cpu_model": cpu_model(),
        "cores": os.cpu_count() or 0,
        "threads": threads,
        "torch": torch.__version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "bf16_native": cpu_has_native_bf16(),
        "bf16_flags": _cpu_flags(),
        "cuda": torch.cuda.is_available(),
        "load_avg_1m_at_start": round(load[0], 2),
    }


def cosine(out: torch.Tensor, ref: torch.Tensor) -> dict[str, float]:
    """Worst and mean cosine of each output row to its fp32 reference (accuracy of a variant)."""
    cos = torch.nn.functional.cosine_similarity(out.float(), ref.float(), dim=-1)
    return {"cos_min": float(cos.min()), "cos_mean": float(cos.mean())}
