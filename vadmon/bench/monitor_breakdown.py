"""Where the monitor's time goes: CPU per process role, and the parts of a score's latency.

CPU: the monitor runs in its own session (``procs.start``), so every process of it shares the
session's process group; ``/proc/<pid>/stat`` gives each one's user+system CPU time, and its
command line gives the role (capture = decode, resample and ring write; inference = CLIP and the
VadCLIP step; alerts; the supervisor). Sampled at the start and the end of the measurement
period, the difference divided by the period is cores in use per role. Cameras per core = the
camera count ÷ the cores the whole monitor used.

Latency parts come from each ``ScoreMessage``'s ``timings`` (per inference batch): CLIP
encode, adapter step, and the rest of snippet-complete → published (transport, batch wait,
ring read, and the wait for ``model.lookahead``).
"""

from __future__ import annotations

import os
import statistics
from pathlib import Path

from vadmon.bench.core import Row
from vadmon.runtime.messages import ScoreMessage

ROLES = {
    "vadmon.capture": "capture (decode)",
    "vadmon.inference": "inference (CLIP + step)",
    "vadmon.alerts": "alerts",
}
TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _role(pid: str) -> str:
    try:
        cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""
    return next((role for key, role in ROLES.items() if key in cmd), "supervisor")


def _stats() -> dict[int, tuple[int, float]]:
    """pid → (parent pid, CPU seconds so far) for every readable process."""
    out = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()  # fields[0] = state, [1] = ppid
        out[int(entry.name)] = (int(fields[1]), (int(fields[11]) + int(fields[12])) / TICKS)
    return out


def cpu_by_role(root: int) -> dict[str, float]:
    """CPU seconds so far of ``root`` and all its descendants, summed per role (children run
    in their own sessions, so the process tree, not the group, finds them)."""
    stats = _stats()
    tree, frontier = {root}, [root]
    while frontier:
        parent = frontier.pop()
        kids = [pid for pid, (ppid, _) in stats.items() if ppid == parent and pid not in tree]
        tree.update(kids)
        frontier += kids
    out: dict[str, float] = {}
    for pid in tree:
        role = _role(str(pid)) if pid in stats else ""
        if role:
            out[role] = out.get(role, 0.0) + stats[pid][1]
    return out


TOTAL_CPU = "whole monitor"
TOTAL_LATENCY = "snippet → score"


def _row(name: str, group: str, value: float, unit: str, base: float, baseline: str,
         samples: int, **params: object) -> Row:  # fmt: skip
    """Rows of the common schema; a zero (an idle role) is n/a with its reason."""
    if value <= 0:
        return Row(name, group, None, unit, None, baseline, params=dict(params),
                   reason="no time measured")  # fmt: skip
    return Row(name, group, value, unit, round(value / base, 4) if base else None, baseline,
               params=dict(params), repeats=samples)  # fmt: skip


def cpu_rows(before: dict[str, float], after: dict[str, float], seconds: float,
             cameras: int, group: str) -> list[Row]:  # fmt: skip
    """Cores in use per role (ratio: share of the whole monitor) and cameras per core."""
    used = {r: max(0.0, after.get(r, 0.0) - before.get(r, 0.0)) / seconds for r in after}
    total = round(sum(used.values()), 4)
    rows = [_row(TOTAL_CPU, group, total, "cores", total, TOTAL_CPU, 2, cameras=cameras)]
    rows += [
        _row(role, group, round(cores, 4), "cores", total, TOTAL_CPU, 2, cameras=cameras)
        for role, cores in sorted(used.items())
    ]
    per_core = round(cameras / total, 3) if total else 0.0
    name = f"{cameras} camera{'s' if cameras != 1 else ''}"
    rows.append(_row(name, "cameras per core", per_core, "cameras/core", per_core, name, 2,
                     cameras=cameras, cores_used=total))  # fmt: skip
    return rows


def latency_rows(scores: list[ScoreMessage], cameras: int, group: str) -> list[Row]:
    """Median per part of snippet-complete → published, in ms (ratio: share of the total).

    ``timings.read`` starts when inference began waiting for the batch, not when the snippet
    arrived, so it is not a part of the latency: the rest is what remains after the CLIP
    encode and the step (transport, batch wait, ring read, lookahead wait).
    """
    parts: dict[str, list[float]] = {"CLIP encode": [], "VadCLIP step": [],
                                     "transport, wait, ring read": [], TOTAL_LATENCY: []}  # fmt: skip
    for m in scores:
        t = m.timings
        enc, step, latency = t.get("encode", 0.0), t.get("adapter", 0.0), t.get("latency", 0.0)
        parts["CLIP encode"].append(enc)
        parts["VadCLIP step"].append(step)
        parts["transport, wait, ring read"].append(max(0.0, latency - enc - step))
        parts[TOTAL_LATENCY].append(latency)
    if not scores:
        return [_row(TOTAL_LATENCY, group, 0.0, "ms", 0.0, TOTAL_LATENCY, 0)]
    medians = {name: statistics.median(v) * 1e3 for name, v in parts.items()}
    total = medians[TOTAL_LATENCY]
    return [
        _row(
            name,
            group,
            round(ms, 3),
            "ms (median)",
            total,
            TOTAL_LATENCY,
            len(scores),
            cameras=cameras,
        )  # fmt: skip
        for name, ms in medians.items()
    ]
