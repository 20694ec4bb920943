"""Building the frozen CLIP through open_clip's own factory.

Weights come from an open_clip pretrained tag (cached by open_clip/HF), a local file, or a
VadCLIP checkpoint that carries the whole CLIP. Missing weights offline must end in one clear
message that tells the user which of those three to use, never in a network traceback.
Tiny architectures for tests and the offline demo are registered through open_clip's model
config mechanism (``model_configs/*.json`` beside this file), so they take the same code path
as ViT-B-16.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import open_clip
import torch

from vadmon.errors import VadmonError

MODEL_CONFIG_DIR = Path(__file__).with_name("model_configs")
PRECISIONS = ("fp32", "bf16", "fp16", "auto")
BF16_CPU_FLAGS = ("avx512_bf16", "amx_bf16")
OPENAI_MEAN = (0.48145466, 0.4578275, 0.40821073)
OPENAI_STD = (0.26862954, 0.26130258, 0.27577711)

_registered = False


def register_model_configs() -> None:
    """Make vadmon's own architectures (e.g. ``vadmon-tiny``) known to open_clip."""
    global _registered
    if not _registered:
        open_clip.add_model_config(MODEL_CONFIG_DIR)
        _registered = True


@dataclass(frozen=True)
class ImageSpec:
    """What an image must look like before ``encode_image``: size and normalisation."""

    size: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]


def resolve_device(device: str) -> torch.device:
    """``auto`` picks CUDA when present; an explicit CUDA request without a GPU is an error."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise VadmonError(
            f"device {device!r} requested but CUDA is not available",
            fix="use --device cpu (or auto)",
        )
    return dev


def _check_arch(arch: str) -> None:
    register_model_configs()
    if arch not in open_clip.list_models():
        close = [m for m in open_clip.list_models() if m.lower().startswith(arch[:4].lower())][:6]
        raise VadmonError(
            f"unknown CLIP architecture {arch!r}",
            fix=f"use an open_clip model name such as {', '.join(close or ['ViT-B-16'])}",
        )


def _missing_weights(arch: str, pretrained: str, why: str) -> VadmonError:
    return VadmonError(
        f"CLIP weights {arch}/{pretrained} are not available ({why})",
        fix=(
            "connect once so open_clip can cache the tag, point at a local weights file "
            "(monitor config: model.clip_pretrained: /path/to/weights.bin; vadmon train: "
            "--clip-pretrained FILE; vadmon extract: --clip-pretrained FILE), or import a published "
            "VadCLIP checkpoint (vadmon import-checkpoint model_ucf.pth --preset ucf), which "
            "carries CLIP"
        ),
    )


def create_clip(
    arch: str = "ViT-B-16",
    pretrained: str | None = None,
    *,
    model_cfg: dict[str, Any] | None = None,
    device: str = "cpu",
    precision: str = "fp32",
) -> torch.nn.Module:
    """Build a frozen open_clip CLIP in eval mode.

    ``pretrained`` is an open_clip tag (``openai``), a local file, or None (random init: only
    for tests, benchmarks and the demo, or when weights are loaded afterwards from a
    checkpoint). ``model_cfg`` builds from an explicit config dict instead of a named arch.
    """
    if precision not in PRECISIONS:
        raise VadmonError(f"unknown precision {precision!r}", fix=f"use one of {PRECISIONS}")
    dev = resolve_device(device)
    if precision == "auto":
        precision = best_precision(dev)
    # Random init (no weights) is seeded and leaves the caller's RNG untouched, so a random
    # tower used for extraction is the same one a later training run rebuilds.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        if model_cfg is not None:
            model = open_clip.model.CLIP(**model_cfg)
        else:
            _check_arch(arch)
            model = _create_named(arch, pretrained)
    model = model.to(dev).eval()
    model.requires_grad_(False)
    set_image_precision(model, precision)
    return model


def _create_named(arch: str, pretrained: str | None) -> torch.nn.Module:
    if pretrained and not (Path(pretrained).is_file() or _is_tag(arch, pretrained)):
        if os.sep in pretrained or pretrained.endswith((".pt", ".pth", ".bin", ".safetensors")):
            raise VadmonError(f"CLIP weights file {pretrained!r} not found", fix="check the path")
        tags = open_clip.list_pretrained_tags_by_model(arch)
        raise VadmonError(
            f"unknown pretrained tag {pretrained!r} for {arch}",
            fix=f"use one of {', '.join(tags) or '(none)'} or a local weights file",
        )
    if pretrained and not Path(pretrained).is_file():
        _go_offline_without_network()
        _fetch_tag(arch, pretrained)
    previous = logging.root.manager.disable
    logging.disable(logging.ERROR)  # open_clip logs the download failure we report ourselves
    try:
        return open_clip.create_model(arch, pretrained=pretrained or None, device="cpu")
    except VadmonError:
        raise
    except (OSError, RuntimeError, ValueError) as exc:
        if pretrained and not Path(pretrained).is_file():
            raise _missing_weights(arch, pretrained, type(exc).__name__) from None
        raise VadmonError(f"cannot load CLIP weights {pretrained!r}: {exc}") from None
    except Exception as exc:  # network stacks raise their own types when offline
        if pretrained:
            raise _missing_weights(arch, pretrained, type(exc).__name__) from None
        raise
    finally:
        logging.disable(previous)


def _hub_reachable(timeout_s: float = 2.0) -> bool:
    host = urlparse(os.environ.get("HF_ENDPOINT", "https://huggingface.co")).hostname or ""
    result: list[bool] = []

    def probe() -> None:
        try:
            socket.getaddrinfo(host, 443)
            result.append(True)
        except OSError:
            result.append(False)

    worker = threading.Thread(target=probe, daemon=True)
    worker.start()
    worker.join(timeout_s)
    return bool(result and result[0])


def _go_offline_without_network() -> None:
    """With no route to the hub, use the local cache only: fail in seconds, not after retries."""
    forced = os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes", "on")
    if not forced and _hub_reachable():
        return
    try:
        from huggingface_hub import constants

        constants.HF_HUB_OFFLINE = True
    except ImportError:  # pragma: no cover - open_clip depends on huggingface_hub
        pass
    logging.getLogger("huggingface_hub").setLevel(logging.ERROR)


def _fetch_tag(arch: str, tag: str) -> None:
    """Resolve the tag's weights (cache or download) before building a large random model."""
    from open_clip.pretrained import download_pretrained, get_pretrained_cfg

    previous = logging.root.manager.disable
    logging.disable(logging.ERROR)
    try:
        path = download_pretrained(get_pretrained_cfg(arch, tag))
    except Exception as exc:  # hub/network errors come in many types
        raise _missing_weights(arch, tag, type(exc).__name__) from None
    finally:
        logging.disable(previous)
    if not path:
        raise _missing_weights(arch, tag, "no download source")


def _is_tag(arch: str, tag: str) -> bool:
    return tag in open_clip.list_pretrained_tags_by_model(arch)


def cpu_has_native_bf16(cpuinfo: str | None = None) -> bool:
    """True when the CPU multiplies bf16 in hardware (AVX-512-BF16 or AMX).

    Only these make bf16 weights faster: oneDNN also "supports" bf16 on plain AVX-512 by
    converting, which is slower than fp32. ``torch.backends.cpu.get_cpu_capability()`` reports
    only ``AVX512``, so the kernel's flags are the reliable source.
    """
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


def best_cpu_precision() -> str:
    """Fastest CPU image-tower precision that keeps embeddings at cosine ≥ 0.999 to fp32.

    bf16 weights on CPUs with native bf16 (measured ~4× fp32 for ViT-B-16 by ``vadmon bench
    clip``); fp32 elsewhere. bf16 *autocast* is never chosen: it casts per op and is slower
    than fp32 on CPU.
    """
    return "bf16" if cpu_has_native_bf16() else "fp32"


def best_precision(device: torch.device | str) -> str:
    """``best_cpu_precision`` on CPU; bf16 on GPUs that have it, else fp16."""
    dev = torch.device(device)
    if dev.type == "cuda":
        return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    return best_cpu_precision() if dev.type == "cpu" else "fp32"


def set_image_precision(model: torch.nn.Module, precision: str) -> None:
    """Store the image tower's weights in bf16/fp16 (faster on AVX-512-BF16 CPUs and GPUs).

    Weights, not autocast: on CPUs with native bf16 matmuls, bf16 weights run ~4× faster than
    fp32 while autocast pays a cast per op. The text tower stays fp32 (it runs once per
    class list).
    """
    dtype = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}[precision]
    model.visual.to(dtype)


def image_dtype(model: torch.nn.Module) -> torch.dtype:
    return next(model.visual.parameters()).dtype


def image_spec(model: torch.nn.Module) -> ImageSpec:
    cfg = getattr(model.visual, "preprocess_cfg", None) or {}
    size = model.visual.image_size
    size = size[0] if isinstance(size, (tuple, list)) else int(size)
    mean = tuple(cfg.get("mean", OPENAI_MEAN))
    std = tuple(cfg.get("std", OPENAI_STD))
    return ImageSpec(size=int(size), mean=mean, std=std)  # type: ignore[arg-type]


@torch.no_grad()
def encode_images(model: torch.nn.Module, images: torch.Tensor) -> torch.Tensor:
    """``encode_image`` in the tower's own dtype; returns fp32 features (not L2-normalised)."""
    dtype = image_dtype(model)
    device = next(model.visual.parameters()).device
    out = model.encode_image(images.to(device=device, dtype=dtype, non_blocking=True))
    return out.float()


def clip_config_from_openai_state_dict(sd: dict[str, torch.Tensor]) -> dict[str, Any]:
    """Infer an open_clip model config from OpenAI-CLIP weights (heads = width // 64)."""
    vision_width = sd["visual.conv1.weight"].shape[0]
    patch = sd["visual.conv1.weight"].shape[-1]
    grid = round((sd["visual.positional_embedding"].shape[0] - 1) ** 0.5)
    vision_layers = len(
        {k.split(".")[3] for k in sd if k.startswith("visual.transformer.resblocks.")}
    )
    text_width = sd["ln_final.weight"].shape[0]
    text_layers = len({k.split(".")[2] for k in sd if k.startswith("transformer.resblocks.")})
    return {
        "embed_dim": int(sd["text_projection"].shape[1]),
        "quick_gelu": True,
        "vision_cfg": {
            "image_size": int(patch * grid),
            "layers": vision_layers,
            "width": int(vision_width),
            "patch_size": int(patch),
            "head_width": 64,
        },
        "text_cfg": {
            "context_length": int(sd["positional_embedding"].shape[0]),
            "vocab_size": int(sd["token_embedding.weight"].shape[0]),
            "width": int(text_width),
            "heads": max(1, text_width // 64),
            "layers": text_layers,
        },
    }
