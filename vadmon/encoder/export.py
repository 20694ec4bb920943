"""``vadmon encoder export DIR``: the CLIP image tower as a Triton model repository.

Why a repository and not just an ONNX file: Triton reads ``<name>/config.pbtxt`` for batching,
instances and accelerators, and vadmon needs the tower's identity on the server side. The
SHA-256 of the tower's fp32 weights (``tower_hash``) goes into ``config.pbtxt`` ``parameters``
(served back by Triton's model-config endpoint, where vadmon checks it at connect) and into a
sidecar ``vadmon.json`` that ``pytriton_serve`` reads. Preprocessing is not in the model: vadmon
resizes, crops and normalises before the wire, so the server sees NCHW float32 ``[N,3,S,S]``.
"""

from __future__ import annotations

import json
import warnings
from dataclasses import dataclass
from pathlib import Path

import torch

from vadmon.atomic import atomic_path
from vadmon.encoder.base import tower_hash as base_tower_hash
from vadmon.errors import VadmonError
from vadmon.model.clip_factory import image_spec

INPUT = "images"
OUTPUT = "embeddings"
HASH_PARAMETER = "vadmon_tower_sha256"
SIDECAR = "vadmon.json"
ONNX_OPSET = 17


@dataclass(frozen=True)
class ExportOptions:
    """What config.pbtxt says about batching and placement (from ``model.encoder``)."""

    name: str
    max_batch_size: int
    preferred_batch_sizes: tuple[int, ...]
    max_queue_delay_us: int
    instances: int
    gpu: bool = True  # KIND_GPU + TensorRT stanza; False: KIND_CPU (a CPU-only server)


class _Tower(torch.nn.Module):
    """``encode_image`` as the whole graph: exactly what ``encode_images`` computes."""

    def __init__(self, clip: torch.nn.Module) -> None:
        super().__init__()
        self.clip = clip

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.clip.encode_image(images).float()


def tower_hash(clip: torch.nn.Module) -> str:
    """The identity of CLIP's image tower (``base.tower_hash`` over fp32 values), so a server
    whose model came from another checkpoint is recognised whatever it is called."""
    return base_tower_hash(clip.visual, as_fp32=True)


def tower_dims(clip: torch.nn.Module) -> tuple[int, int]:
    """(image size S, embedding width D) of the tower."""
    size = image_spec(clip).size
    with torch.no_grad():
        out = clip.encode_image(torch.zeros(1, 3, size, size))
    return size, int(out.shape[-1])


def export_onnx(clip: torch.nn.Module, path: Path, size: int) -> None:
    """The tower with a dynamic batch axis (the TorchScript exporter: seconds, no tracing of
    open_clip's Python control flow by torch.export)."""
    try:
        import onnx  # noqa: F401 - torch.onnx.export needs it; say so in one line
    except ImportError:
        raise VadmonError(
            "ONNX export needs the onnx package", fix="pip install 'vadmon[triton]'"
        ) from None
    tower = _Tower(clip.float().eval()).eval()
    example = torch.zeros(2, 3, size, size)
    # nn.MultiheadAttention's inference fast path is a fused op ONNX cannot express: trace the
    # plain ops (the same math) instead
    fastpath = torch.backends.mha.get_fastpath_enabled()
    torch.backends.mha.set_fastpath_enabled(False)
    try:
        with atomic_path(path) as tmp, warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(
                tower,
                (example,),
                str(tmp),
                input_names=[INPUT],
                output_names=[OUTPUT],
                dynamic_axes={INPUT: {0: "batch"}, OUTPUT: {0: "batch"}},
                opset_version=ONNX_OPSET,
                dynamo=False,
            )
    finally:
        torch.backends.mha.set_fastpath_enabled(fastpath)


def config_pbtxt(opts: ExportOptions, size: int, dim: int, digest: str) -> str:
    """Triton's model configuration (protobuf text) for the exported tower."""
    preferred = ", ".join(str(b) for b in opts.preferred_batch_sizes)
    kind = "KIND_GPU" if opts.gpu else "KIND_CPU"
    lines = [
        f'name: "{opts.name}"',
        'platform: "onnxruntime_onnx"',
        f"max_batch_size: {opts.max_batch_size}",
        f'input [ {{ name: "{INPUT}" data_type: TYPE_FP32 dims: [ 3, {size}, {size} ] }} ]',
        f'output [ {{ name: "{OUTPUT}" data_type: TYPE_FP32 dims: [ {dim} ] }} ]',
        "dynamic_batching {",
        *([f"  preferred_batch_size: [ {preferred} ]"] if preferred else []),
        f"  max_queue_delay_microseconds: {opts.max_queue_delay_us}",
        "}",
        f"instance_group [ {{ count: {opts.instances} kind: {kind} }} ]",
    ]
    if opts.gpu:
        lines += [
            "optimization { execution_accelerators {",
            "  gpu_execution_accelerator: [ {",
            '    name: "tensorrt"',
            '    parameters { key: "precision_mode" value: "FP16" }',
            '    parameters { key: "max_workspace_size_bytes" value: "1073741824" }',
            "  } ]",
            "} }",
        ]
    lines.append(f'parameters {{ key: "{HASH_PARAMETER}" value: {{ string_value: "{digest}" }} }}')
    return "\n".join(lines) + "\n"


def export_repository(clip: torch.nn.Module, out_dir: Path, opts: ExportOptions) -> Path:
    """Write ``out_dir/<name>/{1/model.onnx, config.pbtxt, vadmon.json}``; returns the entry."""
    entry = out_dir / opts.name
    if entry.exists() and any(entry.iterdir()):
        raise VadmonError(
            f"{entry} already exists", "vadmon encoder export", "choose an empty DIR or remove it"
        )
    (entry / "1").mkdir(parents=True, exist_ok=True)
    size, dim = tower_dims(clip)
    digest = tower_hash(clip)
    export_onnx(clip, entry / "1" / "model.onnx", size)
    (entry / "config.pbtxt").write_text(config_pbtxt(opts, size, dim, digest))
    sidecar = {
        "format": 1,
        "name": opts.name,
        HASH_PARAMETER: digest,
        "input": INPUT,
        "output": OUTPUT,
        "image_size": size,
        "embed_dim": dim,
        "max_batch_size": opts.max_batch_size,
        "preferred_batch_sizes": list(opts.preferred_batch_sizes),
        "max_queue_delay_us": opts.max_queue_delay_us,
        "instances": opts.instances,
    }
    (entry / SIDECAR).write_text(json.dumps(sidecar, indent=2) + "\n")
    return entry
