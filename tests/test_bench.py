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

from vadmon.model.precision import CPU_CANDIDATES, cpu_model

REPO = Path(__file__).resolve().parents[1]
BENCHES = ["clip", "step", "scaling", "transport", "capture"]

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


def run_quick(out: Path, benches: list[str], *extra: str) -> dict:
    env = dict(os.environ)  # as the subprocess_env fixture (function-scoped) builds it
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    env["PYTHONUNBUFFERED"] = "1"
    proc = subprocess.run(
        [sys.executable, "-m", "vadmon", "bench", *benches, "--quick", "--threads", "1",
         "--json", str(out), *extra],
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
        *(
            f"StreamingStep {dtype}, live cycle, {how}"
            for dtype in ("fp32", "bf16")
            for how in ("no memo", "block memo")
        ),
        "StreamingStep auto, window 16",
        "StreamingStep auto, window 8",
    ]
    # ``auto`` is a measured probe (it may pick fp32 on a bf16 CPU under load): the rows record
    # what it resolved to, and their dtype is the adapter dtype of that precision
    resolved = {row["params"]["resolved"] for row in rows[8:]}
    assert len(resolved) == 1 and resolved <= set(CPU_CANDIDATES)
    auto = {"bf16": "bf16"}.get(resolved.pop(), "fp32")  # int8 quantises only the image tower
    dtypes = ["fp32", "bf16", "fp32", "fp32", "bf16", "bf16", auto, auto]
    assert [row["params"]["dtype"] for row in rows[2:]] == dtypes


def test_step_fp32_streaming_matches_model(quick_result: dict) -> None:
    rows = {row["name"]: row for row in quick_result["benchmarks"]["step"]["rows"]}
    fp32 = rows["StreamingStep fp32"]["accuracy"]
    assert fp32["max_abs_coarse"] <= 1e-5 and fp32["max_abs_fine"] <= 1e-5
    bf16 = rows["StreamingStep bf16"]["accuracy"]
    assert 0 < max(bf16.values()) < 0.05  # bf16 really ran: it rounds, visibly but not by much
    memo = rows["StreamingStep fp32, live cycle, block memo"]
    assert memo["params"]["memo"] is True and max(memo["accuracy"].values()) <= 1e-5


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


def test_capture_rows_split_the_process_and_compare_to_decoding(quick_result: dict) -> None:
    rows = {row["name"]: row for row in quick_result["benchmarks"]["capture"]["rows"]}
    base = rows["decode only: read() at 25 fps"]
    assert base["unit"] == "ms/frame" and base["ratio"] == 1.0
    one = rows["capture, 1 camera(s)"]
    assert one["baseline"] == base["name"] and one["unit"] == "ms/frame"
    params = one["params"]
    assert params["cameras"] == 1 and params["frames"] > 0 and params["snippets"] >= 0
    parts = params["loop_ms_per_frame"] + params["reader_decoder_ms_per_frame"]
    assert parts > 0 and params["cores_per_camera"] > 0
    assert any("load average" in note for note in quick_result["benchmarks"]["capture"]["notes"])


@pytest.mark.slow
def test_monitor_rows_report_capacity_and_latencies(tmp_path: Path) -> None:
    """The whole monitor for about a minute: in the slow loop, so the fast one stays fast."""
    result = run_quick(
        tmp_path / "monitor.json", ["monitor"], "--encoder", "torch", "--cameras", "1"
    )
    assert set(result["benchmarks"]) == {"monitor"}
    rows = result["benchmarks"]["monitor"]["rows"]
    by_group: dict[str, list[dict]] = {}
    for row in rows:
        by_group.setdefault(row["group"], []).append(row)
    one = {row["name"]: row for row in by_group["throughput"]}["1 camera"]
    assert one["value"] is not None, one  # the real monitor scored snippets
    assert isinstance(one["params"]["sustained"], bool) and isinstance(
        one["params"]["settled"], bool
    )
    assert isinstance(one["params"]["skipped"], int) and one["params"]["error"] == ""
    (capacity,) = by_group["capacity"]
    assert capacity["name"] == "max sustained cameras" and capacity["params"]["tried"] == [1]
    for group in ("pipeline latency p50", "pipeline latency p95"):
        assert [row["unit"] for row in by_group[group]] == ["ms"]
    alert_groups = [g for g in by_group if g.startswith(("alert latency", "webhook latency"))]
    assert len(alert_groups) == 4  # p50/p95 of snippet end → webhook and score → webhook
    # where the time goes: cores per process role and the parts of a score's latency
    (cpu,) = [g for g in by_group if g.startswith("CPU breakdown")]
    cores = {row["name"]: row for row in by_group[cpu]}
    assert {"whole monitor", "capture (decode)", "inference (CLIP + step)"} <= set(cores)
    assert cores["whole monitor"]["value"] > 0 and cores["whole monitor"]["ratio"] == 1.0
    parts = sum(r["value"] or 0 for n, r in cores.items() if n != "whole monitor")
    assert abs(parts - cores["whole monitor"]["value"]) < 1e-3
    (per_core,) = by_group["cameras per core"]
    assert per_core["value"] == round(1 / cores["whole monitor"]["value"], 3)
    (lat,) = [g for g in by_group if g.startswith("latency breakdown")]
    assert {r["name"] for r in by_group[lat]} == {
        "CLIP encode", "VadCLIP step", "transport, wait, ring read", "snippet → score"
    }  # fmt: skip


@pytest.mark.parametrize(("encoder", "threads"), [(None, None), ("openvino", 2)])
def test_monitor_config_runs_the_chosen_encoder(
    tmp_path: Path, encoder: str | None, threads: int | None
) -> None:
    """``--encoder`` and ``--model-threads`` reach the monitor's config (None: its defaults)."""
    from vadmon.alerts.signing import generate_secret
    from vadmon.bench.monitor_setup import MonitorSpec, write_config
    from vadmon.config.encoder import EncoderConfig
    from vadmon.config.load import load_config

    spec = MonitorSpec("b1", 2, tmp_path / "v.avi", tmp_path / "m.pt", 8, tmp_path / "ipc",
                       tmp_path / "data", "http://127.0.0.1:9/hook", encoder, threads)  # fmt: skip
    path = write_config(tmp_path / "monitor.yaml", spec)
    cfg = load_config(path, env={"VADMON_BENCH_HOOK_SECRET": generate_secret()})
    assert cfg.model is not None
    assert cfg.model.encoder.backend == (encoder or EncoderConfig().backend)
    assert cfg.model.threads == threads  # null by default: the probe chooses
    assert sorted(cfg.cameras) == ["cam0", "cam1"]


def test_unknown_benchmark_is_one_line_error(subprocess_env: dict[str, str]) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "vadmon", "bench", "nosuch"],
        env=subprocess_env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert proc.returncode == 2
    assert "unknown benchmark 'nosuch'" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
    assert not Path("nosuch").exists()


def test_markdown_table_names_the_command_and_the_cpu(tmp_path: Path, subprocess_env) -> None:
    out = tmp_path / "perf.md"
    proc = subprocess.run(
        [sys.executable, "-m", "vadmon", "bench", "step", "--quick", "--threads", "1",
         "--markdown", str(out)],
        cwd=REPO, env=subprocess_env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    text = out.read_text()
    first = text.splitlines()[0]
    assert first.startswith("`vadmon bench step --quick") and cpu_model() in first
    rows = [line for line in text.splitlines() if line.startswith("| window=")]
    assert any("| StreamingStep fp32 |" in r and "\\|Δp\\|" in r for r in rows), rows
    assert all(line.count("|") - line.count("\\|") == 6 for line in rows)  # 5 cells each


def test_lookahead_rows_agree_more_with_offline_as_lookahead_grows(tmp_path: Path) -> None:
    """`vadmon bench lookahead`: per model, agreement with the offline 256-chunk scores for each
    lookahead, event-level F1 through the alert logic, and the latency it adds."""
    result = run_quick(tmp_path / "out.json", ["lookahead"])
    rows = result["benchmarks"]["lookahead"]["rows"]
    ucf = {r["params"]["lookahead"]: r for r in rows if r["group"] == "compact UCF" and
           "lookahead" in r["params"]}  # fmt: skip
    assert {0, 1, 2, 4, 8} <= set(ucf)
    for d, row in ucf.items():
        acc = row["accuracy"]
        assert -1 <= acc["corr"] <= 1 and 0 <= acc["event_f1"] <= 1
        assert acc["added_latency_s"] == pytest.approx(d * 0.64)
    assert ucf[8]["accuracy"]["corr"] > ucf[0]["accuracy"]["corr"]  # the future helps
