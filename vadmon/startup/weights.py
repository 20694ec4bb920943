"""Which weights a model section needs, whether this host has them, and how to get them.

Three sources exist (models/README.md): a vadmon checkpoint file (trained here or converted from
the published VadCLIP ``model_ucf.pth``/``model_xd.pth``, which carry CLIP), open_clip's
pretrained tags (``openai``: fetched once into the Hugging Face cache) and a local CLIP weights
file. Nothing here touches the network: a missing source must be named before any child starts,
not discovered by the inference process 30 s later.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from vadmon.errors import VadmonError

GUIDE = "models/README.md"
PUBLISHED = {"ucf": "model_ucf.pth", "xd": "model_xd.pth"}
# open_clip's hub location of the tags vadmon's configs use: importing open_clip to ask costs
# 3–7 s (torch), and `run` must refuse a bad config in under two; a test keeps this equal to
# open_clip's own table, any other tag is looked up there
KNOWN_HUB = {
    ("ViT-B-16", "openai"): "timm/vit_base_patch16_clip_224.openai/",
    ("ViT-B-32", "openai"): "timm/vit_base_patch32_clip_224.openai/",
    ("ViT-L-14", "openai"): "timm/vit_large_patch14_clip_224.openai/",
}
WEIGHT_SUFFIXES = (".pt", ".pth", ".bin", ".safetensors")


@dataclass(frozen=True)
class WeightSource:
    """One thing the model needs: its kind, what it is, where it is (or would be), if present."""

    kind: str  # "checkpoint" | "open_clip cache" | "local file" | "random"
    name: str
    location: str
    present: bool
    how: str  # how to get it when absent


def hub_cache_dir() -> Path:
    """The Hugging Face hub cache open_clip downloads into (``HF_HUB_CACHE``/``HF_HOME`` win)."""
    try:
        from huggingface_hub import constants

        return Path(constants.HF_HUB_CACHE)
    except ImportError:  # pragma: no cover - open_clip depends on huggingface_hub
        home = os.environ.get("HF_HOME", os.path.expanduser("~/.cache/huggingface"))
        return Path(home) / "hub"


def cached_tag(arch: str, tag: str) -> tuple[str, Path | None]:
    """(where open_clip keeps ``arch``/``tag``, the cached file or None), from the cache only."""
    cfg = _pretrained_cfg(arch, tag)
    hub = cfg.get("hf_hub", "")
    if hub:
        from huggingface_hub import try_to_load_from_cache

        repo, filename = os.path.split(hub)  # "org/name/" → the default file names
        names = [filename] if filename else list(HUB_FILES)
        where = f"{hub_cache_dir()} (models--{repo.replace('/', '--')})"
        for name in names:
            hit = try_to_load_from_cache(repo, name)
            if isinstance(hit, str) and Path(hit).is_file():
                return where, Path(hit)
        return where, None
    url = cfg.get("url", "")
    target = Path(os.path.expanduser("~/.cache/clip")) / os.path.basename(url)
    return str(target), target if url and target.is_file() else None


HUB_FILES = ("open_clip_model.safetensors", "open_clip_pytorch_model.bin")


def _pretrained_cfg(arch: str, tag: str) -> dict:
    if (arch, tag) in KNOWN_HUB:
        return {"hf_hub": KNOWN_HUB[(arch, tag)]}
    from open_clip.pretrained import get_pretrained_cfg

    return get_pretrained_cfg(arch, tag)


def is_tag(arch: str, pretrained: str) -> bool:
    """An open_clip tag, not a file (the shipped tags are known without importing open_clip)."""
    if (arch, pretrained) in KNOWN_HUB:
        return True
    if os.sep in pretrained or pretrained.endswith(WEIGHT_SUFFIXES) or Path(pretrained).exists():
        return False
    import open_clip

    return pretrained in open_clip.list_pretrained_tags_by_model(arch)


def _preset_hint(path: str) -> str:
    for preset, published in PUBLISHED.items():
        if preset in Path(path).name:
            return (
                f"download {published} from the VadCLIP authors' release, then "
                f"`vadmon import-checkpoint {published} --preset {preset} -o {path}`"
            )
    return (
        "train one (`vadmon train … -o PATH`) or convert a published one (vadmon import-checkpoint)"
    )


def sources(model) -> list[WeightSource]:
    """Every weight source the config's ``model`` section needs (``model`` is ModelConfig)."""
    if model.mode == "vadclip":
        path = str(model.checkpoint)
        return [
            WeightSource(
                "checkpoint",
                Path(path).name,
                path,
                Path(path).is_file(),
                f"{_preset_hint(path)}; see {GUIDE}",
            )
        ]
    pretrained = model.clip_pretrained
    if not pretrained:
        return [WeightSource("random", model.clip_arch, "(random init)", True, "")]
    if not is_tag(model.clip_arch, pretrained):
        return [
            WeightSource(
                "local file",
                Path(pretrained).name,
                pretrained,
                Path(pretrained).is_file(),
                f"copy the open_clip weights file there or fix model.clip_pretrained; see {GUIDE}",
            )
        ]
    where, hit = cached_tag(model.clip_arch, pretrained)
    return [
        WeightSource(
            "open_clip cache",
            f"{model.clip_arch}/{pretrained}",
            str(hit) if hit else where,
            hit is not None,
            f"run `vadmon models --fetch {model.clip_arch}/{pretrained}` once with network, "
            f"or copy a host's {hub_cache_dir()} here (or set HF_HOME); see {GUIDE}",
        )
    ]


def _missing_what(src: WeightSource) -> str:
    if src.kind == "checkpoint":
        return f"checkpoint file not found (got '{src.location}')"
    if src.kind == "local file":
        return f"CLIP weights file not found (got '{src.location}')"
    return f"open_clip weights {src.name} are not in the local cache (looked in {src.location})"


def unknown_arch(model, where: str) -> VadmonError | None:
    """A zero-shot ``clip_arch`` open_clip does not know: that, not a missing file, is the
    problem to name (the shipped architecture/tag pairs are known without importing open_clip)."""
    if model.mode == "vadclip" or (model.clip_arch, model.clip_pretrained) in KNOWN_HUB:
        return None
    from vadmon.model.clip_factory import _check_arch

    try:
        _check_arch(model.clip_arch)
    except VadmonError as exc:
        return VadmonError(exc.what, f"{where} (model.clip_arch)", exc.fix)
    return None


def missing(model, where: str) -> list[VadmonError]:
    """One line per absent weight source: which kind, where it was looked for, how to get it."""
    bad_arch = unknown_arch(model, where)
    if bad_arch is not None:
        return [bad_arch]
    return [
        VadmonError(
            _missing_what(src),
            f"{where} (model.{'checkpoint' if src.kind == 'checkpoint' else 'clip_pretrained'})",
            src.how,
        )
        for src in sources(model)
        if not src.present
    ]
