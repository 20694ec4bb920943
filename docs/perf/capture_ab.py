"""Before/after of the capture process in one session (docs/PERFORMANCE.md, issue 24).

    git archive <before-commit> | tar -x -C /tmp/before
    cd /tmp && PYTHONPATH=<this checkout> python <this checkout>/docs/perf/capture_ab.py \
        /tmp/before <this checkout> 1,4 3 > capture-before-after.jsonl

Run it from a directory without a ``vadmon`` package (``python -m`` puts the working
directory first on ``sys.path``, ahead of ``PYTHONPATH``). Each round runs every camera count
on both trees, the order alternating, then the decode-only floor; one JSON line per cell.
"""

import json
import os
import sys
import tempfile
from pathlib import Path

from vadmon.bench.capture import Plan, measure_capture, measure_decode
from vadmon.bench.monitor_setup import VideoSpec, write_video
from vadmon.bench.procs import child_env

before, after, cams, rounds = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
counts = [int(c) for c in cams.split(",")]
plan = Plan(cameras=tuple(counts), video_s=20, window_s=5, repeats=3, warmup_s=3)
with tempfile.TemporaryDirectory(prefix="vab-", dir="/tmp") as tmp:
    video = write_video(Path(tmp) / "camera.avi", VideoSpec(20, (1.0, 1.4)))
    for r in range(rounds):
        for n in counts:
            order = [("before", before), ("after", after)]
            for name, tree in order if r % 2 == 0 else order[::-1]:
                sub = Path(tmp) / f"{name}{n}r{r}"
                sub.mkdir()
                env = child_env({"PYTHONPATH": tree})
                row = measure_capture(video, n, plan, sub, env=env)
                load = round(os.getloadavg()[0], 2)
                cell = {"round": r, "variant": name, "cameras": n, "ms_per_frame": row.value}
                print(json.dumps({**cell, **row.params, "load": load}), flush=True)
        floor = measure_decode(video, plan)
        load = round(os.getloadavg()[0], 2)
        cell = {"round": r, "variant": "decode-only", "ms_per_frame": floor.value, "load": load}
        print(json.dumps(cell), flush=True)
