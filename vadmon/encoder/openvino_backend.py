"""OpenVINO image tower: converted once from the torch module, int8 by NNCF, cached on disk.

Why OpenVINO: on a 2-core CPU the tower is ~80 % of the monitor and OpenVINO's int8 kernels
(VNNI/AMX) and fused attention beat every torch CPU path we measured (docs/ENCODERS.md).
The conversion is cached per (tower hash, IR precision, library versions): ``model.xml`` and
``model.bin`` are written atomically, then ``manifest.json`` with their sha256 (the commit
marker). A load re-hashes both files; a mismatch, a missing file or an unreadable model is
logged and rebuilt. bf16 shares the fp32 IR: it is a compile-time precision hint.

Pitfalls handled here: ``save_model`` compresses weights to fp16 unless told not to; on AMX
CPUs the default inference precision is bf16, so fp32 pins ``f32`` explicitly (int8 keeps the
default for its unquantised ops; the fidelity gate judges the result);
``INFERENCE_NUM_THREADS`` bounds the threads (the process shares its cores with capture).
"""

from __future__ import annotations

import json
import logging
import shutil
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from torch import nn

from vadmon.atomic import atomic_write_bytes, atomic_write_text
from vadmon.encoder.base import tower_hash

log = logging.getLogger("vadmon.encoder.openvino")

PRECISIONS = ("fp32", "bf16", "int8")
# int8: the ops NNCF left unquantised run in OpenVINO's own default (bf16 where the CPU has it,
# f32 elsewhere): measured 1.4× faster than pinning f32 on an AMX Xeon, cosine 0.9997 vs 0.99975
_HINT = {"fp32": "f32", "bf16": "bf16", "int8": None}
FORMAT = 1  # part of the cache key: a changed recipe rebuilds
stats = {"conversions": 0, "quantisations": 0, "cache_hits": 0, "rebuilds": 0}


def available() -> bool:
    try:
        import nncf  # noqa: F401
        import openvino  # noqa: F401
    except ImportError:
        return False
    return True


def versions() -> str:
    import nncf
    import openvino

    return f"openvino {openvino.__version__}|nncf {nncf.__version__}|torch {torch.__version__}"


def default_cache_dir() -> Path:
    import os

    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "vadmon" / "encoders"


class OpenVinoEncoder:
    """A compiled OpenVINO tower; ``encode`` matches ``TorchEncoder.encode``."""

    backend = "openvino"

    def __init__(self, compiled, precision: str, threads: int, source: str = "") -> None:
        self.compiled = compiled
        self.precision = precision
        self.threads = threads
        self.source = source  # where the model came from: "converted", "cache", "memory"
        self._request = compiled.create_infer_request()

    def encode(self, images: torch.Tensor) -> torch.Tensor:
        x = np.ascontiguousarray(images.detach().cpu().float().numpy())
        result = self._request.infer({0: x})
        return torch.from_numpy(np.array(next(iter(result.values())), dtype=np.float32))


def convert(visual: nn.Module, size: int):
    """The fp32 tower as an ``ov.Model`` with a dynamic batch dimension."""
    import openvino as ov

    stats["conversions"] += 1
    example = torch.zeros(1, 3, size, size)
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tracer warnings about shape checks turned constant
        return ov.convert_model(visual.float().eval(), example_input=example,
                                input=[(-1, 3, size, size)])  # fmt: skip


def quantize(model, calibration: torch.Tensor):
    """NNCF post-training static int8 (transformer preset: SmoothQuant, mixed activations)."""
    import nncf

    stats["quantisations"] += 1
    items = [calibration[i : i + 1].numpy() for i in range(len(calibration))]
    return nncf.quantize(model, nncf.Dataset(items), subset_size=len(items),
                         model_type=nncf.ModelType.TRANSFORMER)  # fmt: skip


def compile_model(model, precision: str, threads: int):
    import openvino as ov

    config = {
        "INFERENCE_NUM_THREADS": int(threads),
        "PERFORMANCE_HINT": "LATENCY",
        "NUM_STREAMS": 1,
        "ENABLE_CPU_PINNING": False,  # capture and alerts share these cores
    }
    if _HINT[precision]:
        config["INFERENCE_PRECISION_HINT"] = _HINT[precision]
    return ov.Core().compile_model(model, "CPU", config)


def in_memory(visual: nn.Module, size: int, precision: str, threads: int,
              calibration: torch.Tensor | None = None) -> OpenVinoEncoder:  # fmt: skip
    """Convert (and quantise) without touching the disk: the probe and the bench use this."""
    model = convert(visual, size)
    if precision == "int8":
        model = quantize(model, calibration if calibration is not None else _smooth(size))
    return OpenVinoEncoder(compile_model(model, precision, threads), precision, threads, "memory")


def _smooth(size: int, count: int = 8) -> torch.Tensor:
    gen = torch.Generator().manual_seed(0)
    coarse = torch.rand(count, 3, 8, 8, generator=gen) * 4 - 2
    return torch.nn.functional.interpolate(coarse, size=(size, size), mode="bilinear")


# --- the disk cache -----------------------------------------------------------------------------
def _sha256(path: Path) -> str:
    import hashlib

    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def entry_dir(cache_dir: Path, digest: str, precision: str) -> tuple[Path, str]:
    """The cache folder of one IR and the key it must carry."""
    import hashlib

    ir = "int8" if precision == "int8" else "fp32"
    key = f"format{FORMAT}|{digest}|openvino|{ir}|{versions()}"
    return cache_dir / hashlib.sha256(key.encode()).hexdigest()[:24], key


def _load_cached(folder: Path, key: str):
    """The cached ``ov.Model`` if its manifest matches ``key`` and the files their hashes."""
    import openvino as ov

    manifest_path = folder / "manifest.json"
    if not manifest_path.exists():
        return None, "not cached"
    try:
        manifest = json.loads(manifest_path.read_text())
        if manifest.get("key") != key:
            return None, "cache key mismatch"
        for name, expected in manifest["sha256"].items():
            if _sha256(folder / name) != expected:
                return None, f"{name} does not match its recorded sha256 (corrupt)"
        return ov.Core().read_model(str(folder / "model.xml")), ""
    except (OSError, ValueError, KeyError, TypeError, RuntimeError) as exc:
        return None, f"unreadable ({type(exc).__name__}: {exc})"


def _store(folder: Path, key: str, model, meta: dict) -> None:
    """Save to a scratch folder, copy atomically beside the cache, manifest last."""
    import openvino as ov

    folder.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=folder.parent, prefix=".tmp-") as scratch:
        ov.save_model(model, str(Path(scratch) / "model.xml"), compress_to_fp16=False)
        hashes = {}
        for name in ("model.xml", "model.bin"):
            data = (Path(scratch) / name).read_bytes()
            atomic_write_bytes(folder / name, data)
            hashes[name] = _sha256(folder / name)
    manifest = {"key": key, "sha256": hashes, **meta}
    atomic_write_text(folder / "manifest.json", json.dumps(manifest, indent=2) + "\n")


def cached(visual: nn.Module, size: int, precision: str, threads: int, cache_dir: Path,
           calibration: Callable[[], tuple[torch.Tensor, str]]) -> OpenVinoEncoder:  # fmt: skip
    """The tower in ``precision`` from the cache, converting (and quantising) on a miss."""
    digest = tower_hash(visual)
    folder, key = entry_dir(cache_dir, digest, precision)
    model, why = _load_cached(folder, key)
    if model is not None:
        stats["cache_hits"] += 1
        log.info("openvino %s tower from cache %s", precision, folder)
        return OpenVinoEncoder(compile_model(model, precision, threads), precision, threads,
                               "cache")  # fmt: skip
    if why != "not cached":
        stats["rebuilds"] += 1
        log.warning("openvino cache %s: %s; rebuilding", folder, why)
        shutil.rmtree(folder, ignore_errors=True)
    started = time.monotonic()
    log.info("converting the image tower to OpenVINO (%s, once; cached in %s)", precision, folder)
    model = convert(visual, size)
    meta: dict = {"precision": "int8" if precision == "int8" else "fp32", "tower": digest}
    if precision == "int8":
        frames, source = calibration()
        log.info("quantising to int8 with NNCF on %d calibration frames (%s)", len(frames), source)
        model = quantize(model, frames)
        meta.update(calibration_frames=len(frames), calibration_source=source)
    try:
        _store(folder, key, model, meta)
    except OSError as exc:
        log.warning("openvino tower not cached (%s: %s)", folder, exc.strerror or exc)
    log.info("openvino %s tower ready in %.1f s", precision, time.monotonic() - started)
    return OpenVinoEncoder(compile_model(model, precision, threads), precision, threads,
                           "converted")  # fmt: skip
