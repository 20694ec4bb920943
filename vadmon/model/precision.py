"""Numeric precision of the CLIP image tower and the adapter: the one place it is decided.

Why measured, not guessed from flags: the same ``precision: bf16`` is ~4× faster than fp32 on
a CPU with AVX-512-BF16/AMX and ~4× *slower* on an AVX-512 CPU without it (oneDNN converts),
and torch's dynamic int8 (``quantize_dynamic`` on the Linear layers) is ~1.6× faster than fp32
on a VNNI Xeon but not everywhere. So on CPU ``auto`` times a short probe of the actual
architecture (two transformer layers, random weights) in each candidate precision, keeps only
candidates whose embeddings stay at cosine ≥ ``COSINE_GATE`` to fp32, picks the fastest, logs
the decision and caches it per machine (CPU model, torch version, machine architecture, torch
threads, architecture) under ``$XDG_CACHE_HOME/vadmon`` (default ``~/.cache/vadmon``).

Precisions: ``fp32`` (exact), ``bf16``/``fp16`` (image tower and a copy of the adapter in that
dtype; layer norms, similarity graph and final normalisations stay fp32), ``int8`` (image
tower's Linear layers dynamically quantised to int8; the adapter stays fp32).
"""

from __future__ import annotations

import copy
import hashlib
import json
import logging
import os
import platform
import statistics
import time
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from vadmon.errors import VadmonError

log = logging.getLogger("vadmon.model.precision")

PRECISIONS = ("auto", "fp32", "bf16", "fp16", "int8")
CPU_CANDIDATES = ("fp32", "bf16", "int8")
BF16_CPU_FLAGS = ("avx512_bf16", "amx_bf16")
COSINE_GATE = 0.999
PROBE_VERSION = 2  # part of the cache key: a changed probe re-measures
MIN_GAIN = 1.1  # a lossy precision must beat the exact one by this factor to be chosen
_DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


def check(precision: str) -> str:
    if precision not in PRECISIONS:
        raise VadmonError(f"unknown precision {precision!r}", fix=f"use one of {PRECISIONS}")
    return precision


def adapter_dtype(precision: str) -> torch.dtype:
    """The adapter's dtype for a resolved precision (int8 quantises only the image tower)."""
    return _DTYPES.get(precision, torch.float32)


# --- flags --------------------------------------------------------------------------------------
def cpu_has_native_bf16(cpuinfo: str | None = None) -> bool:
    """True when the CPU multiplies bf16 in hardware (AVX-512-BF16 or AMX): reported with the
    probe so a decision can be read against the hardware, never used alone to decide."""
    if cpuinfo is None:
        try:
            cpuinfo = Path("/proc/cpuinfo").read_text()
        except OSError:
            return False
    for line in cpuinfo.splitlines():
        if line.startswith("flags"):
            flags = set(line.split(":", 1)[1].split())
            return any(flag in flags for flag in BF16_CPU_FLAGS)
    return False


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


# --- applying a precision -------------------------------------------------------------------------
def cast_weights(module: nn.Module, dtype: torch.dtype, skip: tuple[str, ...] = ()) -> nn.Module:
    """Cast parameters in place, except layer norms (CLIP's upcast their input) and the
    submodules named in ``skip``."""
    for name, child in module.named_modules():
        if isinstance(child, nn.LayerNorm) or any(
            name == s or name.startswith(s + ".") for s in skip
        ):
            continue
        for pname, param in list(child.named_parameters(recurse=False)):
            param.data = param.data.to(dtype)
            setattr(child, pname, param)
    return module


def quantize_int8(visual: nn.Module) -> nn.Module:
    """Dynamic int8 on the Linear layers (weights int8, activations quantised per batch).

    ``nn.MultiheadAttention``'s fused in-projection is not an ``nn.Linear`` and stays fp32.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch deprecates the quantized-tensor API it uses
        return torch.ao.quantization.quantize_dynamic(visual, {nn.Linear}, dtype=torch.qint8)


def apply_to_tower(clip: nn.Module, precision: str) -> None:
    """Put ``clip.visual`` in a resolved precision (the text tower stays fp32: it runs once per
    class list)."""
    if precision == "int8":
        clip.visual = quantize_int8(clip.visual.float())
    else:
        clip.visual.to(_DTYPES[precision])


# --- the probe -------------------------------------------------------------------------------------
@dataclass
class ProbeResult:
    """One machine's measurement: images/s and cosine to fp32 per candidate, and the choice."""

    key: str
    choice: str
    images_per_s: dict[str, float]
    cosine_min: dict[str, float]
    cpu_model: str
    bf16_native: bool
    threads: int
    probe_s: float


def cache_path() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "vadmon" / "precision.json"


def machine_key(arch: str) -> str:
    threads = torch.get_num_threads()
    parts = (
        f"probe{PROBE_VERSION}",
        cpu_model(),
        torch.__version__,
        platform.machine(),
        threads,
        arch,
    )
    return "|".join(str(p) for p in parts)


def _probe_images(size: int, count: int = 2) -> torch.Tensor:
    """Smooth random images (low-frequency noise): structured enough that a random tower's
    embeddings are not dominated by noise, deterministic so every machine sees the same."""
    gen = torch.Generator().manual_seed(0)
    coarse = torch.rand(count, 3, 8, 8, generator=gen)
    return F.interpolate(coarse, size=(size, size), mode="bilinear", align_corners=False)


def _variant(tower: nn.Module, name: str) -> Callable[[torch.Tensor], torch.Tensor]:
    model = copy.deepcopy(tower)
    if name == "int8":
        model, dtype = quantize_int8(model), torch.float32
    else:
        model, dtype = model.to(_DTYPES[name]), _DTYPES[name]
    return lambda x: model(x.to(dtype)).float()


def probe(tower: nn.Module, size: int, key: str, repeats: int = 5) -> ProbeResult:
    """Time every CPU candidate on ``tower`` (fp32, random weights) side by side.

    Interleaved rounds after a warm-up of each, so a load spike from other processes or the
    first call's kernel set-up hits every candidate alike. fp32 is kept unless another
    candidate is at least ``MIN_GAIN`` faster and passes the cosine gate.
    """
    images = _probe_images(size)
    started = time.perf_counter()
    times: dict[str, list[float]] = {n: [] for n in CPU_CANDIDATES}
    cosine: dict[str, float] = {}
    with torch.inference_mode():
        runs = {n: _variant(tower, n) for n in CPU_CANDIDATES}
        ref = runs["fp32"](images)
        for name, run in runs.items():
            run(images)
            cosine[name] = round(float(F.cosine_similarity(run(images), ref, dim=-1).min()), 6)
        for _ in range(repeats):
            for name, run in runs.items():
                t0 = time.perf_counter()
                run(images)
                times[name].append(time.perf_counter() - t0)
    speed = {n: round(len(images) / statistics.median(t), 3) for n, t in times.items()}
    choice = "fp32"
    for name in CPU_CANDIDATES:
        if cosine[name] >= COSINE_GATE and speed[name] >= speed[choice] * MIN_GAIN:
            choice = name
    return ProbeResult(
        key=key,
        choice=choice,
        images_per_s=speed,
        cosine_min=cosine,
        cpu_model=cpu_model(),
        bf16_native=cpu_has_native_bf16(),
        threads=torch.get_num_threads(),
        probe_s=round(time.perf_counter() - started, 2),
    )


def _read_cache(path: Path) -> dict[str, dict]:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _write_cache(path: Path, entries: dict[str, dict]) -> None:
    """Best effort: a read-only home must not stop the monitor, only cost a probe next time."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(entries, indent=2) + "\n")
        tmp.replace(path)
    except OSError as exc:
        log.warning("precision probe not cached (%s: %s)", path, exc.strerror or exc)


def cached_probe(arch: str, tower: Callable[[], tuple[nn.Module, int]]) -> ProbeResult:
    """The probe for this machine and architecture, measured once and then read from disk."""
    key = machine_key(arch)
    path = cache_path()
    entries = _read_cache(path)
    entry_id = hashlib.sha256(key.encode()).hexdigest()[:16]
    found = entries.get(entry_id)
    if isinstance(found, dict) and found.get("key") == key:
        try:
            result = ProbeResult(**found)
        except TypeError:
            result = None
        if result is not None and result.choice in CPU_CANDIDATES:
            log.info(
                "precision auto → %s (cached probe %s: %s)", result.choice, path, _summary(result)
            )
            return result
    module, size = tower()
    result = probe(module, size, key)
    entries[entry_id] = asdict(result)
    _write_cache(path, entries)
    log.info(
        "precision auto → %s (probe on %s: %s)", result.choice, result.cpu_model, _summary(result)
    )
    return result


def _summary(result: ProbeResult) -> str:
    return ", ".join(
        f"{n} {result.images_per_s[n]:.1f} img/s cos {result.cosine_min[n]:.4f}"
        for n in CPU_CANDIDATES
        if n in result.images_per_s
    )


def resolve(
    requested: str, device: torch.device, arch: str, tower: Callable[[], tuple[nn.Module, int]]
) -> str:
    """A concrete precision for ``requested`` on ``device``; ``auto`` on CPU runs the probe."""
    check(requested)
    if requested != "auto":
        if requested == "int8" and device.type != "cpu":
            raise VadmonError(
                "precision int8 is a CPU path (torch dynamic quantisation)",
                fix="use precision auto, bf16 or fp16 on a GPU",
            )
        return requested
    if device.type == "cuda":
        return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    if device.type != "cpu":
        return "fp32"
    return cached_probe(arch, tower).choice
