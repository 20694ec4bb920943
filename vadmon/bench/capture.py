"""``capture``: CPU per frame of real capture processes, against decoding alone.

Why: at ≥ 8 cameras on 2 cores, capture's share decides how much is left for inference
(issue 24). N real ``python -m vadmon.capture`` processes play the ``monitor`` benchmark's
camera video (25 fps 640×360 MJPG, looping) with the default camera settings; a consumer in
this process reads their snippets, previews and status beats as inference and alerts would.
After a warm-up, each process's CPU (user + system, every thread, from ``/proc``) is sampled
over ``repeats`` windows and divided by the frames the processes reported.

Baseline: ``VideoCapture.read()`` paced at 25 fps in a process of its own — the decode no
capture can skip; the capture rows' ratio is that floor over their cost (1.0 would be a
capture process that costs only its decode). ``params`` split each row into the capture loop
(main thread) and the rest (reader thread, decoder threads, ZeroMQ I/O), and give cores per
camera. The machine is shared: read the ratio, and the load stated beside it.
"""

from __future__ import annotations

import os
import statistics
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from vadmon.bench import procs
from vadmon.bench.capture_probe import Consumer, ThreadCpu, thread_cpu
from vadmon.bench.core import BenchOptions, BenchResult, Row
from vadmon.bench.monitor_setup import FPS, VideoSpec, write_video
from vadmon.runtime.transport import ipc_dir

BASELINE = "decode only: read() at 25 fps"
GROUP = "CPU per frame"


@dataclass(frozen=True)
class Plan:
    cameras: tuple[int, ...]
    video_s: float  # length of the looping camera video
    window_s: float  # one measured window
    repeats: int
    warmup_s: float  # after every camera is online


def plan(opts: BenchOptions) -> Plan:
    if opts.quick:
        return Plan(cameras=(1,), video_s=4, window_s=1.5, repeats=2, warmup_s=1)
    return Plan(cameras=(1, 4), video_s=20, window_s=5, repeats=max(2, opts.repeats), warmup_s=3)


def _config(directory: Path, video: Path, cameras: int) -> Path:
    """The camera keys at their defaults (previews, frozen check, ring); nothing else runs."""
    cams = "\n".join(f'  cam{i}: {{source: "{video}"}}' for i in range(cameras))
    path = directory / f"capture-{cameras}.yaml"
    data, ipc = directory / "data", ipc_dir(directory / f"ipc{cameras}")
    path.write_text(
        f"""instance: benchcap{os.getpid()}x{cameras}
log_level: warning
defaults: {{loop: true}}
cameras:
{cams}
model: {{mode: vadclip, checkpoint: /nonexistent/capture-loads-no-model.pt}}
storage: {{dir: "{data}"}}
transport: {{ipc_dir: "{ipc}"}}
dashboard: {{enabled: false}}
"""
    )
    return path


def _sample(pids: list[int]) -> ThreadCpu:
    parts = [thread_cpu(pid) for pid in pids]
    return ThreadCpu(sum(p.main_s for p in parts), sum(p.other_s for p in parts))


def _wait(condition: object, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise RuntimeError(f"capture bench: {what} within {timeout_s:.0f} s")
        time.sleep(0.05)


def measure_capture(
    video: Path, cameras: int, p: Plan, directory: Path, env: dict[str, str] | None = None
) -> Row:
    """``cameras`` capture processes; CPU ms per frame (all processes / all frames). ``env``:
    the children's environment (another checkout first on ``PYTHONPATH``, for a before/after
    in one session); this checkout by default."""
    config = _config(directory, video, cameras)
    names = [f"cam{i}" for i in range(cameras)]
    children = [
        procs.start(["vadmon.capture", "--config", str(config), "--camera", name], env=env)
        for name in names
    ]
    try:
        with Consumer(directory / f"ipc{cameras}", names) as consumer:
            _wait(consumer.all_online, 60, "cameras not online")
            time.sleep(p.warmup_s)  # imports done, previews and snippets flowing
            pids = [c.pid for c in children]
            windows: list[tuple[ThreadCpu, int, float]] = []
            for _ in range(p.repeats):
                cpu0, frames0, t0 = _sample(pids), consumer.frames_total(), time.monotonic()
                time.sleep(p.window_s)
                frames = consumer.frames_total() - frames0
                windows.append((_sample(pids).minus(cpu0), frames, time.monotonic() - t0))
            snippets, previews = consumer.snippets, consumer.previews
    finally:
        for child in children:
            procs.kill(child)
    return _row(cameras, windows, snippets, previews)


def _row(cameras: int, windows: list, snippets: int, previews: int) -> Row:
    if any(frames <= 0 for _, frames, _ in windows):
        return Row(f"capture, {cameras} camera(s)", GROUP, None, "ms/frame", None, BASELINE,
                   reason="no frames reported in a window")  # fmt: skip
    per_frame = [cpu.total_s / frames for cpu, frames, _ in windows]
    median = statistics.median(per_frame)
    cpu = ThreadCpu(sum(c.main_s for c, _, _ in windows), sum(c.other_s for c, _, _ in windows))
    frames = int(sum(f for _, f, _ in windows))
    seconds = sum(s for _, _, s in windows)
    params = {
        "cameras": cameras,
        "frames": frames,
        "fps_per_camera": round(frames / seconds / cameras, 2),
        "cores_per_camera": round(cpu.total_s / seconds / cameras, 4),
        "loop_ms_per_frame": round(1000 * cpu.main_s / frames, 3),
        "reader_decoder_ms_per_frame": round(1000 * cpu.other_s / frames, 3),
        "snippets": snippets,
        "previews": previews,
    }
    return Row(f"capture, {cameras} camera(s)", GROUP, round(1000 * median, 3), "ms/frame",
               None, BASELINE, params, median_s=median, repeats=len(windows))  # fmt: skip


def measure_decode(video: Path, p: Plan) -> Row:
    per_frame = []
    for _ in range(p.repeats):
        child = procs.start(["vadmon.bench.capture_probe", str(video), str(p.window_s)])
        got = procs.result(child, 60 + p.window_s, "decode-only child")
        per_frame.append(got["cpu_s"] / max(1, got["frames"]))
    median = statistics.median(per_frame)
    return Row(BASELINE, GROUP, round(1000 * median, 3), "ms/frame", 1.0, BASELINE,
               {"frames_per_window": int(p.window_s * FPS)}, median_s=median,
               repeats=len(per_frame))  # fmt: skip


def run(opts: BenchOptions) -> BenchResult:
    p = plan(opts)
    load = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="vbc-", dir="/tmp") as tmp:
        directory = Path(tmp)
        video = write_video(directory / "camera.avi", VideoSpec(p.video_s, (1.0, 1.4)))
        base = measure_decode(video, p)
        rows = [base] + [measure_capture(video, n, p, directory) for n in p.cameras]
    for row in rows[1:]:
        if row.value is not None and base.value:
            row.ratio = round(base.value / row.value, 3)
    notes = [
        f"load average {load:.2f} at start, {os.getloadavg()[0]:.2f} at the end "
        "(shared machine: read the ratio)",
        "ratio = decode-only ms/frame over the row's (1.0: capture costs only its decode)",
    ]
    return BenchResult("capture", "capture process CPU per frame vs decoding alone", "ms/frame",
                       rows, notes)  # fmt: skip
