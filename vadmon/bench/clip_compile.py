"""``torch.compile`` of the bf16 image tower, measured in a child process under a deadline.

Inductor compilation of a ViT can take minutes on two cores and cannot be cancelled from
inside the process, so the parent starts this module, hands it the inputs and fp32 reference
embeddings through a tensor file, and kills it at the deadline. Results come back one JSON
line per batch size in a file, so batch sizes finished before the deadline still count.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from functools import partial
from pathlib import Path
from typing import Any

import torch

from vadmon.bench.core import BenchOptions, cosine, measure


def run_child(
    arch: str,
    batches: tuple[int, ...],
    images: torch.Tensor,
    refs: dict[int, torch.Tensor],
    threads: int,
    opts: BenchOptions,
    timeout_s: float,
) -> tuple[dict[int, dict[str, Any]], str | None]:
    with tempfile.TemporaryDirectory(prefix="vadmon-bench-") as tmp:
        data, out = Path(tmp) / "inputs.pt", Path(tmp) / "results.jsonl"
        torch.save({"images": images, **{f"ref{b}": refs[b] for b in batches}}, data)
        cmd = [
            sys.executable, "-m", "vadmon.bench.clip_compile", arch, str(data), str(out),
            "--batches", ",".join(map(str, batches)), "--threads", str(threads),
            "--warmup", str(opts.warmup), "--repeats", str(opts.repeats),
            "--budget-s", str(opts.budget_s),
        ]  # fmt: skip
        reason = None
        proc = subprocess.Popen(
            cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
            env=_child_env(), start_new_session=True,
        )  # fmt: skip
        try:
            _, err = proc.communicate(timeout=timeout_s)
            if proc.returncode != 0:
                last = (err or "").strip().splitlines()[-1:] or ["no output"]
                reason = f"torch.compile failed: {last[0][:200]}"
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)  # its own session: inductor's workers too
            proc.communicate()
            reason = f"compilation exceeded the {timeout_s:.0f} s budget"
        results = {}
        if out.is_file():
            for line in out.read_text().splitlines():
                item = json.loads(line)
                results[int(item["batch"])] = item
        return results, reason


def _child_env() -> dict[str, str]:
    """The child must import this same ``vadmon``, wherever the parent found it."""
    root = str(Path(__file__).resolve().parents[2])
    env = dict(os.environ)
    env["PYTHONPATH"] = root + os.pathsep + env.get("PYTHONPATH", "")
    return env


def _main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m vadmon.bench.clip_compile")
    p.add_argument("arch")
    p.add_argument("data")
    p.add_argument("out")
    p.add_argument("--batches", required=True)
    p.add_argument("--threads", type=int, default=0)
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--budget-s", type=float, default=20.0)
    args = p.parse_args(argv)
    from vadmon.model.clip_factory import create_clip

    if args.threads > 0:
        torch.set_num_threads(args.threads)
    data = torch.load(args.data, weights_only=True)
    torch.manual_seed(0)  # same random weights as the parent
    visual = create_clip(args.arch, None).visual.to(torch.bfloat16)
    compiled = torch.compile(visual)
    with torch.inference_mode(), open(args.out, "a") as out:
        for batch in map(int, args.batches.split(",")):
            x = data["images"][:batch].to(torch.bfloat16)
            start = time.perf_counter()
            compiled(x)
            compile_s = time.perf_counter() - start
            timing = measure(partial(compiled, x), args.warmup, args.repeats, args.budget_s)
            acc = cosine(compiled(x), data[f"ref{batch}"])
            item = {"batch": batch, "compile_s": compile_s, **acc, **vars(timing)}
            out.write(json.dumps(item) + "\n")
            out.flush()
            os.fsync(out.fileno())
    return 0


if __name__ == "__main__":
    sys.exit(_main())
