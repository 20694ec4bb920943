"""Printing and saving benchmark results (rich table on the terminal, JSON on disk)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from vadmon.bench.core import SCHEMA, BenchResult


def document(
    results: list[BenchResult], env: dict[str, Any], settings: dict[str, Any]
) -> dict[str, Any]:
    return {
        "schema": SCHEMA,
        "environment": env,
        "settings": settings,
        "benchmarks": {r.name: r.to_dict() for r in results},
    }


def write_json(doc: dict[str, Any], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(doc, indent=2) + "\n")
    tmp.replace(path)


def _fmt(value: float | None, digits: int = 2) -> str:
    if value is None:
        return "n/a"
    if abs(value) >= 100:
        return f"{value:.0f}"
    return f"{value:.{digits}f}"


def _accuracy(acc: dict[str, float]) -> str:
    if "cos_min" in acc and len(acc) <= 2:
        return f"cos ≥ {acc['cos_min']:.5f}"
    if "max_abs_coarse" in acc:
        return f"|Δp| ≤ {max(acc['max_abs_coarse'], acc['max_abs_fine']):.1e}"
    return ", ".join(f"{k} {v:g}" for k, v in acc.items())


def table(result: BenchResult) -> Table:
    t = Table(title=f"{result.name}: {result.description}", title_justify="left")
    for col in ("group", "variant", result.unit, "× baseline", "accuracy", "n"):
        t.add_column(col, justify="right" if col in (result.unit, "× baseline", "n") else "left")
    for row in result.rows:
        ratio = f"{row.ratio:.2f}×" if row.ratio is not None else "n/a"
        t.add_row(
            row.group,
            row.name,
            _fmt(row.value),
            ratio,
            _accuracy(row.accuracy),
            str(row.repeats or ""),
        )
    return t


def print_results(results: list[BenchResult], env: dict[str, Any], console: Console) -> None:
    console.print(f"[bold]{environment_line(env)}[/]")
    for result in results:
        console.print(table(result))
        reasons = {f"{r.name}: n/a, {r.reason}" for r in result.rows if r.reason}
        for note in [*result.notes, *sorted(reasons)]:
            console.print(f"  [dim]{note}[/]")


def environment_line(env: dict[str, Any]) -> str:
    return (
        f"{env['cpu_model']}, {env['cores']} cores, {env['threads']} threads, "
        f"torch {env['torch']}, bf16 native: {env['bf16_native']}, "
        f"load {env['load_avg_1m_at_start']} at start, {env['date']}"
    )


def markdown(results: list[BenchResult], env: dict[str, Any], command: str) -> str:
    """README-ready tables: the command that made them and the machine they were made on."""
    lines = [f"`{command}` on {environment_line(env)}", ""]
    for result in results:
        lines += [f"**{result.name}**: {result.description}", ""]
        lines += [
            f"| group | variant | {result.unit.replace('|', '/')} | × baseline | accuracy |",
            "|---|---|---:|---:|---|",
        ]
        for row in result.rows:
            ratio = f"{row.ratio:.2f}×" if row.ratio is not None else "n/a"
            value = _fmt(row.value) if row.reason is None else f"n/a ({row.reason})"
            lines.append(
                f"| {row.group} | {row.name} | {value} | {ratio} | "
                f"{_accuracy(row.accuracy).replace('|', chr(92) + '|')} |"
            )
        lines += [""] + [f"- {note}" for note in result.notes] + [""]
    return "\n".join(lines)
