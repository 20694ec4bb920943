"""``triton``: CLIP image encode through a real Triton server vs in-process torch, same run.

The tower (random weights: speed does not depend on them) is exported with ``vadmon encoder
export``'s code, served by ``pytriton_serve`` from the Triton venv on this machine's CPU
(onnxruntime, as many threads as torch gets here), and called through vadmon's own Triton
client. Baseline: the local fp32 tower at the same batch size. On a CPU this measures the
cost of the wire and the server, not a GPU pool's speed (docs/TRITON.md has the GPU plan).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import tempfile
import time
from functools import partial
from pathlib import Path

import torch

from vadmon.bench.core import BenchOptions, BenchResult, Row, Timing, cosine, measure, setup_threads
from vadmon.bench.inputs import natural_images
from vadmon.encoder import export as exporter
from vadmon.encoder.triton_backend import TritonImageEncoder, TritonSettings
from vadmon.model.clip_factory import (
    create_clip,
    encode_images,
    image_spec,
    resolve_precision,
    set_image_precision,
)

BASELINE = "torch fp32 (local)"
TRITON_PYTHON = os.environ.get("VADMON_TRITON_PYTHON", "/opt/vadmon-triton/bin/python")
SERVE = Path(exporter.__file__).with_name("pytriton_serve.py")
IN_FLIGHT = 4  # batches sent before waiting, as the inference loop's pipeline does


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _serve(repo: Path, threads: int, log: Path) -> tuple[subprocess.Popen, int]:
    grpc = _port()
    argv = [TRITON_PYTHON, str(SERVE), str(repo), "--grpc-port", str(grpc)]
    argv += ["--http-port", str(_port()), "--metrics-port", str(_port())]
    argv += ["--threads", str(threads)]
    with open(log, "w") as out:
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    return proc, grpc


def _wait_ready(proc: subprocess.Popen, backend: TritonImageEncoder, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            backend.try_connect()
            return
        except Exception:  # not up yet
            time.sleep(0.5)
    raise RuntimeError("Triton did not become ready")


def _row(name: str, batch: int, t: Timing, base_s: float, images: int, acc: dict) -> Row:
    return Row(
        name=name, group=f"batch={batch}", value=images / t.median_s, unit="images/s",
        ratio=(base_s * images / batch) / t.median_s, baseline=BASELINE,
        params={"batch": batch, "in_flight": images // batch}, median_s=t.median_s,
        repeats=t.repeats, accuracy=acc,
    )  # fmt: skip


def _in_flight(backend: TritonImageEncoder, x: torch.Tensor) -> torch.Tensor:
    futures = [backend.submit(x) for _ in range(IN_FLIGHT)]
    return torch.cat([f.result(timeout=120) for f in futures])


def run(opts: BenchOptions) -> BenchResult:
    threads = setup_threads(opts.threads)
    arch, batches = ("vadmon-tiny", (1, 8)) if opts.quick else ("ViT-B-16", (1, 8, 16))
    batches = opts.batches or batches
    model = create_clip(arch, None)
    spec = image_spec(model)
    images, source = natural_images(max(batches), spec)
    rows: list[Row] = []
    base: dict[int, float] = {}
    refs: dict[int, torch.Tensor] = {}
    with torch.inference_mode():
        for b in batches:
            t = measure(partial(encode_images, model, images[:b]), opts.warmup, opts.repeats,
                        opts.budget_s)  # fmt: skip
            base[b], refs[b] = t.median_s, encode_images(model, images[:b])
            rows.append(_row(BASELINE, b, t, t.median_s, b, {}))
    rows += _remote_rows(model, images, batches, base, refs, threads, opts)
    auto = resolve_precision("auto", "cpu", arch)
    if auto != "fp32":
        local = create_clip(arch, None)
        set_image_precision(local, auto)
        for b in batches:
            t = measure(partial(encode_images, local, images[:b]), opts.warmup, opts.repeats,
                        opts.budget_s)  # fmt: skip
            acc = cosine(encode_images(local, images[:b]), refs[b])
            rows.append(_row(f"torch {auto} (local, auto)", b, t, base[b], b, acc))
    notes = [
        f"{arch}, random weights, inputs: {source}; server: pytriton_serve (Triton + "
        f"onnxruntime CPU, {threads} threads) on this machine over 127.0.0.1 gRPC",
        f"ratio = images/s ÷ local torch fp32 images/s at the same batch; 'in flight': "
        f"{IN_FLIGHT} batches sent before waiting (the inference loop overlaps the same way)",
    ]
    return BenchResult("triton", "CLIP image encode via Triton", "images/s", rows, notes)


def _remote_rows(model, images, batches, base, refs, threads: int, opts: BenchOptions) -> list:
    if not Path(TRITON_PYTHON).is_file():
        return [Row("triton", "-", None, "images/s", None, BASELINE,
                    reason=f"no Triton venv at {TRITON_PYTHON} (.ci/run builds it)")]  # fmt: skip
    rows = []
    with tempfile.TemporaryDirectory(prefix="vadmon-bench-triton-") as tmp:
        opts_x = exporter.ExportOptions("bench", max(batches) * IN_FLIGHT, (), 0, 1, gpu=False)
        exporter.export_repository(model, Path(tmp), opts_x)
        size, dim = exporter.tower_dims(model)
        settings = TritonSettings(
            url="grpc://127.0.0.1:0", model="bench", timeout_s=120.0, max_in_flight=IN_FLIGHT,
            reconnect_initial_s=1.0, reconnect_max_s=1.0, image_size=size, embed_dim=dim,
            tower_sha256=exporter.tower_hash(model),
        )  # fmt: skip
        proc, port = _serve(Path(tmp), threads, Path(tmp) / "triton.log")
        settings = TritonSettings(**{**settings.__dict__, "url": f"grpc://127.0.0.1:{port}"})
        backend = TritonImageEncoder(settings)
        try:
            _wait_ready(proc, backend, 300)
            for b in batches:
                x = images[:b]
                t = measure(partial(backend.encode, x), opts.warmup, opts.repeats, opts.budget_s)
                acc = cosine(backend.encode(x), refs[b])
                rows.append(_row("triton (1 batch at a time)", b, t, base[b], b, acc))
                t = measure(partial(_in_flight, backend, x), opts.warmup, opts.repeats,
                            opts.budget_s)  # fmt: skip
                rows.append(_row("triton (4 in flight)", b, t, base[b], b * IN_FLIGHT, acc))
        finally:
            backend.close()
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=60)
    return rows
