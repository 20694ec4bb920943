"""``vadmon bench --quick`` runs end to end and writes a well-formed result file.

Only the schema is checked (keys, types, ratios present, baselines at exactly 1.0): timing
values depend on the machine and its load, so they are never asserted. ``transport`` starts
real sender/receiver processes. ``monitor`` starts the real monitor (``vadmon run``) with the
demo model for about a minute, so it has its own run, marked slow.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import cpu_flags, native_bf16

REPO = Path(__file__).resolve().parents[1]
BENCHES = ["clip", "step", "scaling", "transport"]

ENV_KEYS = {
    "date": str,
    "cpu_model": str,
    "cores": int,
    "threads": int,
    "torch": str,
    "cpu_capability": str,
    "bf16_native": bool,
    "bf16_flags": list,
}
ROW_KEYS = {"name", "group", "value", "unit", "ratio", "baseline", "params", "accuracy", "reason"}


def run_quick(out: Path, benches: list[str]) -> dict:
    env = dict(os.environ)  # as the subprocess_env fixture (function-scoped) builds it
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    env["PYTHONUNBUFFERED"] = "1"
    proc = subprocess.run(
        [sys.executable, "-m", "vadmon", "bench", *benches, "--quick", "--threads", "1",
         "--json", str(out)],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    return {"stdout": proc.stdout, **json.loads(out.read_text())}


@pytest.fixture(scope="module")
def quick_result(tmp_path_factory: pytest.TempPathFactory) -> dict:
    result = run_quick(tmp_path_factory.mktemp("bench") / "out.json", BENCHES)
    assert "clip" in result["stdout"] and "snippets/s" in result["stdout"]
    return result


def test_environment_block(quick_result: dict) -> None:
    assert quick_result["schema"] == "vadmon-bench/1"
    env = quick_result["environment"]
    for key, kind in ENV_KEYS.items():
        assert isinstance(env[key], kind), key
    assert env["threads"] == 1  # --threads is applied and recorded
    assert env["bf16_native"] is native_bf16()
    bf16_flags = {f for f in cpu_flags() if f in ("avx512_bf16", "amx_bf16") or f.startswith("amx")}
    assert set(env["bf16_flags"]) == bf16_flags
    assert quick_result["settings"]["quick"] is True
    assert quick_result["settings"]["names"] == BENCHES


def test_every_row_has_value_ratio_and_baseline(quick_result: dict) -> None:
    benches = quick_result["benchmarks"]
    assert set(benches) == set(BENCHES)
    for name, bench in benches.items():
        assert bench["rows"], name
        names = {row["name"] for row in bench["rows"]}
        for row in bench["rows"]:
            assert set(row) >= ROW_KEYS, (name, row)
            assert row["baseline"] in names, (name, row["baseline"])
            if row["value"] is None:  # n/a must say why
                assert row["ratio"] is None and isinstance(row["reason"], str) and row["reason"]
                continue
            assert (
                isinstance(row["value"], float) and math.isfinite(row["value"]) and row["value"] > 0
            )
            assert isinstance(row["ratio"], float) and row["ratio"] > 0
            assert isinstance(row["repeats"], int) and row["repeats"] >= 2


def test_baseline_rows_have_ratio_one(quick_result: dict) -> None:
    for name, bench in quick_result["benchmarks"].items():
        baselines = {row["baseline"] for row in bench["rows"]}
        for row in bench["rows"]:
            if row["name"] in baselines and row["value"] is not None:
                assert row["ratio"] == 1.0, (name, row["name"], row["group"])


def test_clip_rows_cover_variants_and_accuracy(quick_result: dict) -> None:
    rows = quick_result["benchmarks"]["clip"]["rows"]
    variants = {row["name"] for row in rows}
    assert {"fp32", "bf16", "autocast_bf16", "int8_dynamic", "compile+bf16"} <= variants
    assert {row["params"]["batch"] for row in rows} == {1, 4}
    for row in rows:
        if row["value"] is not None:
            assert set(row["accuracy"]) == {"cos_min", "cos_mean"}
            assert -1.0 <= row["accuracy"]["cos_min"] <= 1.0 + 1e-6


def test_step_row_names_are_unique_and_the_same_on_every_cpu(quick_result: dict) -> None:
    rows = quick_result["benchmarks"]["step"]["rows"]
    assert [row["name"] for row in rows] == [
        "full forward (prompts re-encoded)",
        "cached text features",
        "StreamingStep fp32",
        "StreamingStep bf16",
        "StreamingStep auto, window 16",
        "StreamingStep auto, window 8",
    ]
    auto = "bf16" if native_bf16() else "fp32"
    assert [row["params"]["dtype"] for row in rows[2:]] == ["fp32", "bf16", auto, auto]


def test_step_fp32_streaming_matches_model(quick_result: dict) -> None:
    rows = {row["name"]: row for row in quick_result["benchmarks"]["step"]["rows"]}
    fp32 = rows["StreamingStep fp32"]["accuracy"]
    assert fp32["max_abs_coarse"] <= 1e-5 and fp32["max_abs_fine"] <= 1e-5
    bf16 = rows["StreamingStep bf16"]["accuracy"]
    assert 0 < max(bf16.values()) < 0.05  # bf16 really ran: it rounds, visibly but not by much


def test_transport_rows_cover_modes_resolutions_and_target(quick_result: dict) -> None:
    rows = quick_result["benchmarks"]["transport"]["rows"]
    cells = {(row["group"], row["params"]["mode"]): row for row in rows}
    for res in ("1080p", "720p"):
        for mode in ("ring", "zmq", "memcpy"):
            fps, cpu = cells[(f"{res} frames/s", mode)], cells[(f"{res} sender CPU @25fps", mode)]
            assert fps["unit"] == "frames/s" and cpu["unit"] == "% of a core"
            assert isinstance(cpu["params"]["vs_memcpy"], float)
            assert isinstance(cpu["params"]["lost_frames"], int)
    target = cells[("1080p sender CPU @25fps", "ring")]["params"]
    assert target["target_pct"] == 5.0 and isinstance(target["meets_target"], bool)


@pytest.mark.slow
def test_monitor_rows_report_capacity_and_latencies(tmp_path: Path) -> None:
    """The whole monitor for about a minute: in the slow loop, so the fast one stays fast."""
    result = run_quick(tmp_path / "monitor.json", ["monitor"])
    assert set(result["benchmarks"]) == {"monitor"}
    rows = result["benchmarks"]["monitor"]["rows"]
    by_group: dict[str, list[dict]] = {}
    for row in rows:
        by_group.setdefault(row["group"], []).append(row)
    one = {row["name"]: row for row in by_group["throughput"]}["1 camera"]
    assert one["value"] is not None, one  # the real monitor scored snippets
    assert isinstance(one["params"]["sustained"], bool)
    assert isinstance(one["params"]["skipped"], int) and one["params"]["error"] == ""
    (capacity,) = by_group["capacity"]
    assert capacity["name"] == "max sustained cameras" and capacity["params"]["tried"] == [1]
    for group in ("pipeline latency p50", "pipeline latency p95"):
        assert [row["unit"] for row in by_group[group]] == ["ms"]
    alert_groups = [g for g in by_group if g.startswith(("alert latency", "webhook latency"))]
    assert len(alert_groups) == 4  # p50/p95 of snippet end → webhook and score → webhook


def test_unknown_benchmark_is_one_line_error(subprocess_env: dict[str, str]) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "vadmon", "bench", "nosuch"],
        env=subprocess_env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert proc.returncode == 2
    assert "unknown benchmark 'nosuch'" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
    assert not Path("nosuch").exists()
