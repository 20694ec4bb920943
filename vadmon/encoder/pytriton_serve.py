"""Serve an exported tower repository through a real Triton server on the CPU (pytriton).

Run by the Triton venv's interpreter, not vadmon's (pytriton needs numpy < 2 and a Python
whose standard library matches its backend stub)::

    /opt/vadmon-triton/bin/python vadmon/encoder/pytriton_serve.py REPO --grpc-port 8001

Every ``REPO/<name>/`` written by ``vadmon encoder export`` is bound under its name: one
onnxruntime session on ``1/model.onnx`` per instance (``instances``) behind Triton's dynamic batcher (max batch, preferred
sizes and queue delay from the entry's ``vadmon.json``), with the tower hash served as the
model-config parameter ``vadmon_tower_sha256``, as a real Triton serving ``config.pbtxt`` does.
This file imports nothing of vadmon: the venv has numpy, onnxruntime and pytriton only.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
from pathlib import Path

HASH_PARAMETER = "vadmon_tower_sha256"  # = vadmon.encoder.export.HASH_PARAMETER


def _infer_fn(onnx_path: Path, input_name: str, output_name: str, threads: int):
    """A batched callable: Triton concatenates queued requests, onnxruntime runs them once."""
    import numpy as np
    import onnxruntime as ort
    from pytriton.decorators import batch

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    session = ort.InferenceSession(str(onnx_path), opts, providers=["CPUExecutionProvider"])

    @batch
    def infer(**inputs):
        images = np.ascontiguousarray(inputs[input_name], dtype=np.float32)
        return {output_name: session.run([output_name], {input_name: images})[0]}

    return infer


def _serve_hashes(hashes: dict[str, str]) -> None:
    """pytriton writes each model's config.pbtxt itself: add the tower hash to its
    ``parameters`` (looked up by model name) before any model is bound."""
    from pytriton.models.model import Model

    original = Model._get_triton_model_config

    def with_hash(self):
        cfg = original(self)
        if self.model_name in hashes:
            cfg.backend_parameters[HASH_PARAMETER] = hashes[self.model_name]
        return cfg

    Model._get_triton_model_config = with_hash


def bind_entry(triton, entry: Path, threads: int) -> str:
    import numpy as np
    from pytriton.model_config import DynamicBatcher, ModelConfig, Tensor

    meta = json.loads((entry / "vadmon.json").read_text())
    size, dim = int(meta["image_size"]), int(meta["embed_dim"])
    batcher = DynamicBatcher(
        max_queue_delay_microseconds=int(meta["max_queue_delay_us"]),
        preferred_batch_size=[int(b) for b in meta["preferred_batch_sizes"]] or None,
    )
    triton.bind(
        model_name=meta["name"],
        infer_func=[
            _infer_fn(entry / "1" / "model.onnx", meta["input"], meta["output"], threads)
            for _ in range(max(1, int(meta["instances"])))
        ],
        inputs=[Tensor(name=meta["input"], dtype=np.float32, shape=(3, size, size))],
        outputs=[Tensor(name=meta["output"], dtype=np.float32, shape=(dim,))],
        config=ModelConfig(max_batch_size=int(meta["max_batch_size"]), batcher=batcher),
        strict=True,
    )
    return meta["name"]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="pytriton_serve")
    ap.add_argument("repo", type=Path, help="model repository from 'vadmon encoder export'")
    ap.add_argument("--address", default="127.0.0.1")
    ap.add_argument("--grpc-port", type=int, default=8001)
    ap.add_argument("--http-port", type=int, default=8000)
    ap.add_argument("--metrics-port", type=int, default=8002)
    ap.add_argument("--threads", type=int, default=1, help="onnxruntime threads per model")
    args = ap.parse_args(argv)
    from pytriton.triton import Triton, TritonConfig

    entries = sorted(p.parent for p in args.repo.glob("*/vadmon.json"))
    if not entries:
        print(f"pytriton_serve: error: no exported model in {args.repo}", file=sys.stderr)
        return 2
    config = TritonConfig(
        grpc_address=args.address,
        grpc_port=args.grpc_port,
        http_address=args.address,
        http_port=args.http_port,
        metrics_address=args.address,
        metrics_port=args.metrics_port,
        allow_gpu_metrics=False,
        exit_on_error=True,
    )
    metas = [json.loads((e / "vadmon.json").read_text()) for e in entries]
    _serve_hashes({m["name"]: m[HASH_PARAMETER] for m in metas})
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    with Triton(config=config) as triton:
        names = [bind_entry(triton, entry, args.threads) for entry in entries]
        print(f"pytriton_serve: serving {', '.join(names)} on grpc {args.grpc_port}", flush=True)
        triton.serve()
    return 0


if __name__ == "__main__":
    sys.exit(main())
