"""``monitor``: how many 25 fps cameras the whole monitor sustains, and how fast alerts arrive.

The real thing: ``python -m vadmon run --config X --no-dashboard`` (supervisor, one capture
process per camera, inference, alerts) on file cameras looping a 25 fps 640×360 video, the
default CPU path (``device: cpu``, ``precision: auto``), a signed-webhook receiver over HTTP.
The benchmark listens on the monitor's own sockets: scores on ``scores.sock`` and capture
status on ``capture-<cam>.sock``.

A camera count is *sustained* when, over the measurement period, no snippet is skipped (every
snippet index between a camera's first and last scored one was scored: this catches inference
skips, ring overwrites and capture-side drops alike), every camera is scored at ≥ 90 % of its
snippet rate (25/16 per second) and captures at ≥ 90 % of 25 fps. Counts step 1, 2, 4, … until
one is not sustained, then the gap is bisected while the time budget lasts.

Latencies: pipeline = ``t_emitted − t_end`` of every score (snippet complete → score
published); alert = webhook arrival − ``t_end`` of the snippet that opened the event, and its
part after inference, webhook arrival − that score's ``t_emitted``.
"""

from __future__ import annotations

import os
import statistics
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from vadmon.bench.core import BenchOptions, BenchResult, Row
from vadmon.bench.monitor_breakdown import cpu_rows, latency_rows
from vadmon.bench.monitor_run import Plan, RunResult, run_monitor
from vadmon.bench.monitor_setup import (
    FPS,
    TINY_WINDOW,
    VideoSpec,
    tiny_checkpoint,
    vit_checkpoint,
    write_video,
)
from vadmon.runtime.messages import ScoreMessage

SNIPPET_FRAMES = 16
SNIPPET_RATE = FPS / SNIPPET_FRAMES
BASELINE = "1 camera"
TINY = "demo tiny (vadmon-tiny, window 8)"


def plan(opts: BenchOptions) -> Plan:
    if opts.quick:
        return Plan(VideoSpec(6.0, (2.0, 4.0)), 1.0, 5.0, 90.0, 60.0, 1)
    # warm-up 30 s: at 8 real-size cameras the start-up skips went on for ~30 s after the
    # first scores (Prometheus counters, 2026-12-02), which a shorter warm-up measured
    return Plan(VideoSpec(16.0, (8.0, 10.0)), 30.0, 40.0, 180.0, 330.0, 16)


# --- one monitor run --------------------------------------------------------------------------


# --- evaluation -------------------------------------------------------------------------------


@dataclass
class StepStats:
    cameras: int
    scored: int
    rate: float  # snippets/s, all cameras
    min_camera_rate: float
    skipped: int
    min_capture_fps: float
    source_skipped: int
    latency_ms: list[float]
    sustained: bool


def evaluate(run: RunResult) -> StepStats:
    window = [m for m in run.scores if run.t0 <= m.t_emitted <= run.t1]
    period = max(run.t1 - run.t0, 1e-9)
    skipped, rates = 0, []
    for cam in (f"cam{i}" for i in range(run.cameras)):
        idx = sorted({m.snippet_index for m in window if m.camera == cam})
        if idx:
            skipped += (idx[-1] - idx[0] + 1) - len(idx)
        rates.append(len(idx) / period)
    fps, source_skipped = _capture(run)
    ok = not run.error and skipped == 0 and min(rates) >= 0.9 * SNIPPET_RATE and fps >= 0.9 * FPS
    return StepStats(
        cameras=run.cameras,
        scored=len(window),
        rate=len(window) / period,
        min_camera_rate=min(rates),
        skipped=skipped,
        min_capture_fps=fps,
        source_skipped=source_skipped,
        latency_ms=[(m.t_emitted - m.t_end) * 1e3 for m in window],
        sustained=ok,
    )


def _capture(run: RunResult) -> tuple[float, int]:
    """Slowest camera's median capture fps and frames its loop missed, in the window."""
    fps, missed = [], 0
    for samples in run.capture.values():
        inside = [c for ts, c in samples if run.t0 <= ts <= run.t1]
        if not inside:
            fps.append(0.0)
            continue
        fps.append(statistics.median(c.fps or 0.0 for c in inside))
        missed += int((inside[-1].source_skipped or 0) - (inside[0].source_skipped or 0))
    return (min(fps) if fps else 0.0), missed


def alert_latencies(run: RunResult) -> tuple[list[float], list[float]]:
    """(snippet end → webhook, score emitted → webhook) in ms, per event start."""
    by_key = {(m.camera, round(m.t_end, 3)): m for m in run.scores}
    total, hook = [], []
    for d in run.deliveries:
        if not d.verified or not str(d.body.get("type", "")).endswith(".start"):
            continue
        data = d.body.get("data", {})
        t_end = float(data.get("start_ts", 0.0)) + float(data.get("duration_s", 0.0))
        score = _match(by_key, str(data.get("camera")), t_end)
        if score is not None:
            total.append((d.t - score.t_end) * 1e3)
            hook.append((d.t - score.t_emitted) * 1e3)
    return total, hook


def _match(by_key: dict, camera: str, t_end: float) -> ScoreMessage | None:
    """The score that opened the event (``duration_s`` is rounded to 1 ms)."""
    for delta in (0.0, -0.001, 0.001, -0.002, 0.002):
        hit = by_key.get((camera, round(t_end + delta, 3)))
        if hit is not None:
            return hit
    return None


# --- stepping ---------------------------------------------------------------------------------


def step_cameras(
    run_one, p: Plan, counts: tuple[int, ...] | None = None
) -> list[tuple[RunResult, StepStats]]:
    """1, 2, 4, … until a count fails, then bisect the gap while the budget lasts; or 1 (the
    baseline every ratio divides by) and then exactly ``counts`` (``--cameras``), each run
    whatever the others gave."""
    done: dict[int, tuple[RunResult, StepStats]] = {}
    if counts:
        for n in dict.fromkeys((1, *counts)):
            run = run_one(n)
            done[n] = (run, evaluate(run))
        return [done[k] for k in sorted(done)]
    start = time.monotonic()
    n, good, bad = 1, 0, None
    while n is not None:
        run = run_one(n)
        done[n] = (run, evaluate(run))
        if done[n][1].sustained:
            good = n
        else:
            bad = n if bad is None else min(bad, n)
        spent = time.monotonic() - start
        per_run = spent / len(done)
        if spent + per_run > p.budget_s:
            break
        n = _next(good, bad, p.max_cameras)
    return [done[k] for k in sorted(done)]


def _next(good: int, bad: int | None, cap: int) -> int | None:
    if bad is None:
        return good * 2 if good * 2 <= cap else None
    if bad - good <= 1 or good == 0:
        return None
    return (good + bad) // 2


# --- rows -------------------------------------------------------------------------------------


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def _label(n: int) -> str:
    return BASELINE if n == 1 else f"{n} cameras"


def throughput_rows(steps: list[tuple[RunResult, StepStats]], model: str) -> list[Row]:
    base = steps[0][1]
    rows = []
    for run, s in steps:
        params = {
            "cameras": s.cameras, "model": model, "sustained": s.sustained, "skipped": s.skipped,
            "min_camera_snippets_per_s": round(s.min_camera_rate, 3),
            "min_capture_fps": round(s.min_capture_fps, 2), "source_frames_missed": s.source_skipped,
            "period_s": round(run.t1 - run.t0, 1), "error": run.error, "settled": run.settled,
        }  # fmt: skip
        ok = s.scored >= 2 and base.scored >= 2
        rows.append(
            Row(_label(s.cameras), "throughput", s.rate if ok else None, "snippets/s",
                s.rate / base.rate if ok else None, BASELINE, params, repeats=s.scored,
                reason=None if ok else f"fewer than 2 snippets scored ({run.error})")
        )  # fmt: skip
        for q in (0.5, 0.95):
            rows.append(_latency_row(f"pipeline latency p{q * 100:.0f}", s.cameras,
                                     s.latency_ms, base.latency_ms, q, model))  # fmt: skip
    good = {s.cameras: s for _, s in steps if s.sustained}
    best = max(good, default=0)
    rows.append(
        Row("max sustained cameras", "capacity", float(best) if best else None, "cameras",
            float(best) if best else None, BASELINE,
            {"model": model, "tried": [s.cameras for _, s in steps], "sustained": sorted(good)},
            repeats=good[best].scored if best else None,  # snippets scored at that count
            reason=None if best else "not even 1 camera ran without skipped snippets")
    )  # fmt: skip
    return rows


def _latency_row(
    group: str, cameras: int, values: list[float], base: list[float], q: float, model: str
) -> Row:
    if len(values) < 2 or len(base) < 2:
        return Row(_label(cameras), group, None, "ms", None, BASELINE, {"cameras": cameras},
                   reason="fewer than 2 samples")  # fmt: skip
    value = _pct(values, q)
    return Row(_label(cameras), group, value, "ms", _pct(base, q) / value, BASELINE,
               {"cameras": cameras, "model": model}, repeats=len(values))  # fmt: skip


def alert_rows(runs: list[RunResult], model: str) -> list[Row]:
    lat = {r.cameras: alert_latencies(r) for r in runs}
    base = lat[runs[0].cameras]
    rows = []
    for i, name in enumerate(("alert latency (snippet end → webhook)",
                              "webhook latency (score emitted → webhook)")):  # fmt: skip
        for q in (0.5, 0.95):
            for n, pair in lat.items():
                row = _latency_row(f"{name} p{q * 100:.0f}", n, pair[i], base[i], q, model)
                if row.value is None:
                    row.reason = "fewer than 2 alerts (with the matching score) in the run"
                rows.append(row)
    return rows


def breakdown_rows(steps: list[tuple[RunResult, StepStats]]) -> list[Row]:
    """Where the time goes at the largest sustained count (else the smallest tried), and at
    the largest count tried when that one was not sustained (where the capacity ran out)."""
    good = [(r, s) for r, s in steps if s.sustained] or steps[:1]
    picked = [max(good, key=lambda rs: rs[1].cameras)[0]]
    largest = max(steps, key=lambda rs: rs[1].cameras)[0]
    if largest.cameras != picked[0].cameras:
        picked.append(largest)
    rows: list[Row] = []
    for run in picked:
        group = f"breakdown at {_label(run.cameras)}"
        window = [m for m in run.scores if run.t0 <= m.t_emitted <= run.t1]
        period = max(run.t1 - run.t0, 1e-9)
        rows += cpu_rows(*run.cpu, period, run.cameras, f"CPU {group}")
        rows += latency_rows(window, run.cameras, f"latency {group}")
    return rows


# --- entry ------------------------------------------------------------------------------------


def run(opts: BenchOptions) -> BenchResult:
    p = plan(opts)
    with tempfile.TemporaryDirectory(prefix="vb-") as name:
        tmp = Path(name)
        os.chmod(tmp, 0o700)
        video = write_video(tmp / "camera.avi", p.video)
        tiny = tiny_checkpoint(tmp / "tiny.pt")
        if opts.quick:
            model, ckpt, window = TINY, tiny, TINY_WINDOW
        else:
            model, ckpt, window = "ViT-B-16 random weights", vit_checkpoint(tmp / "vit.pt"), 256

        runtime = warm_encoder(ckpt, video, opts.encoder, opts.model_threads)

        def one(n: int, ckpt: Path = ckpt, window: int = window, model: str = model) -> RunResult:
            return run_monitor(
                tmp, n, ckpt, window, video, p, model, opts.encoder, opts.model_threads
            )

        steps = step_cameras(one, p, opts.cameras)
        rows = throughput_rows(steps, model) + breakdown_rows(steps)
        if opts.quick:
            alert_runs = [r for r, _ in steps]
        else:  # alerts need a model that fires: the tiny one, at 1 and at the sustained count
            best = max([s.cameras for _, s in steps if s.sustained], default=1)
            alert_runs = [
                run_monitor(
                    tmp, n, tiny, TINY_WINDOW, video, p, TINY, opts.encoder, opts.model_threads
                )
                for n in sorted({1, best})
            ]
            model = TINY
        rows += alert_rows(alert_runs, model)
    return BenchResult("monitor", "whole monitor: cameras sustained, latency", "snippets/s | ms",
                       rows, _notes(p, opts, runtime))  # fmt: skip


def warm_encoder(ckpt: Path, video: Path, backend: str | None, threads: int | None) -> str:
    """Build the scorer once as the monitor will (backend/precision probe, OpenVINO conversion
    and quantisation, all cached), so the runs measure steady state, not first-start work."""
    from vadmon.config.models import ModelConfig
    from vadmon.inference.build import build_scorer

    threads = torch.get_num_threads()
    encoder = {} if backend is None else {"encoder": {"backend": backend}}
    try:
        cfg = ModelConfig(mode="vadclip", checkpoint=ckpt, device="cpu", threads=threads, **encoder)
        return build_scorer(cfg, "cpu", [str(video)]).runtime
    finally:
        torch.set_num_threads(threads)


def _notes(p: Plan, opts: BenchOptions, runtime: str) -> list[str]:
    quick = opts.quick
    model = "demo tiny model" if quick else "ViT-B-16 (random weights)"
    from vadmon.config.encoder import EncoderConfig

    backend = opts.encoder or EncoderConfig().backend  # --encoder, or the monitor's default
    model += (
        f", model.encoder.backend {backend} + precision auto → {runtime} (cached before the runs)"
        f", model.threads {opts.model_threads or 'null (the probe chooses)'}"
    )
    return [
        f"`vadmon run` on N file cameras (25 fps 640×360 MJPG, {p.video.seconds:.0f} s loop, "
        f"red flash {p.video.flash[0]:.0f}–{p.video.flash[1]:.0f} s), device cpu, {model}; "
        f"measured {p.period_s:.0f} s after every camera's first score + {p.warm_s:.0f} s",
        "sustained: no skipped snippet index, every camera scored at ≥ 90 % of 25/16 "
        "snippets/s and captured at ≥ 90 % of 25 fps",
        "throughput ratio = snippets/s ÷ 1 camera; latency ratio = 1 camera ÷ N cameras "
        "(>1: faster)",
        "alert/webhook latency: demo tiny model (fires on the red flash); "
        + ("same runs" if quick else "separate runs at 1 and the max sustained count"),
    ]
