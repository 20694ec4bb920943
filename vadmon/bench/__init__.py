"""Benchmarks behind ``vadmon bench``: one module per benchmark, found by name.

A benchmark module exposes ``run(opts: BenchOptions) -> BenchResult``. It is registered here by
name → module path and imported only when selected, so a benchmark that needs heavy setup (a
ViT-B-16, ZeroMQ sockets, a whole pipeline) costs nothing unless asked for. To add one (e.g.
``transport``, ``monitor``): write ``vadmon/bench/<name>.py`` and add it to ``REGISTRY``.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from vadmon.errors import VadmonError

if TYPE_CHECKING:
    from vadmon.bench.core import BenchOptions, BenchResult, Row


@dataclass(frozen=True)
class BenchSpec:
    name: str
    module: str
    description: str
    default: bool = True  # part of a plain ``vadmon bench``


REGISTRY: dict[str, BenchSpec] = {
    spec.name: spec
    for spec in (
        BenchSpec("clip", "vadmon.bench.clip", "CLIP image encode: precisions and layouts"),
        BenchSpec("step", "vadmon.bench.step", "streaming step vs full forward with prompts"),
        BenchSpec("scaling", "vadmon.bench.scaling", "cost per snippet vs window and cameras"),
        BenchSpec("transport", "vadmon.bench.transport", "frame transport: ring vs ZeroMQ copy"),
        BenchSpec("capture", "vadmon.bench.capture", "capture process CPU per frame vs decode"),
        BenchSpec(
            "lookahead",
            "vadmon.bench.lookahead",
            "streaming vs offline agreement and latency per model.lookahead (minutes)",
            default=False,
        ),
        BenchSpec(
            "web",
            "vadmon.bench.web",
            "event-list API p95 latency with 10,000 events (a real web process)",
            default=False,
        ),
        BenchSpec(
            "triton",
            "vadmon.bench.triton",
            "CLIP image encode through a local Triton server (CPU) vs in-process torch",
            default=False,
        ),
        BenchSpec(
            "monitor",
            "vadmon.bench.monitor",
            "whole monitor: cameras sustained, alert latency (~10 min; not in the default set)",
            default=False,
        ),
    )
}


def names(selected: list[str] | None) -> list[str]:
    if not selected:
        return [n for n, spec in REGISTRY.items() if spec.default]
    unknown = [n for n in selected if n not in REGISTRY]
    if unknown:
        raise VadmonError(
            f"unknown benchmark {unknown[0]!r}", fix=f"choose from: {', '.join(REGISTRY)}"
        )
    return list(dict.fromkeys(selected))


def __getattr__(name: str) -> Any:
    """``BenchOptions``/``BenchResult``/``Row`` on first use: ``vadmon.bench.core`` imports
    torch (seconds), which the child processes of ``transport`` must not pay for."""
    if name in ("BenchOptions", "BenchResult", "Row"):
        from vadmon.bench import core

        return getattr(core, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def run(name: str, opts: BenchOptions) -> BenchResult:
    module = importlib.import_module(REGISTRY[name].module)
    return module.run(opts)


__all__ = ["REGISTRY", "BenchOptions", "BenchResult", "BenchSpec", "Row", "names", "run"]
