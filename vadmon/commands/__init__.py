"""CLI subcommands: each module exposes ``register(subparsers)``."""

from __future__ import annotations


def preset_help(what: str) -> str:
    """``--preset`` help that says what each choice is (e.g. ``ucf = UCF-Crime, ...``)."""
    from vadmon.model.config import list_presets, load_preset

    choices = "; ".join(f"{name} = {load_preset(name).description}" for name in list_presets())
    return f"{what}: {choices}"
