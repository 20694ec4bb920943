"""The link's refusals on the dashboard row and ``/metrics``, on both hosts (issue 20, case 14).

The inference host knows its refusals first-hand (its heartbeat, per camera and reason); the
capture host knows them from the inference host's verdicts (``CameraView.link``). Both export
the same family, ``vadmon_link_refused_total{camera, reason}``; a host that has both (one host
running every role over tcp) exports its own counts, never the pair twice.
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.core import CounterMetricFamily, Metric

from vadmon.dashboard.state import CameraView, StateView

SHORT = {
    "refused_camera": "not this key's camera",
    "clock_skew": "clock ahead",
    "unknown_camera": "unknown camera",
}


def refused_counts(cam: CameraView) -> tuple[tuple[str, float], ...]:
    """(reason, count) refused: first-hand on the inference host, else the verdict's."""
    if cam.link_refused:
        return cam.link_refused
    if cam.link is not None:
        return tuple(sorted((r, n) for r, n in cam.link.refused.items() if n))
    return ()


def link_note(cam: CameraView) -> str:
    """``link refused 12 (clock ahead)`` for the camera row; "" when nothing was refused."""
    counts = dict(refused_counts(cam))
    if not counts:
        return ""
    last = cam.link.last_reason if cam.link is not None else ""
    reason = last if last in counts else max(counts, key=lambda r: counts[r])
    return f"link refused {sum(counts.values()):.0f} ({SHORT.get(reason, reason)})"


def link_suffix(cam: CameraView) -> str:
    """``", link refused 12 (clock ahead)"`` for a service-mode status line, or ""."""
    note = link_note(cam)
    return f", {note}" if note else ""


def row_notes(cam: CameraView) -> str:
    """What a camera row says after its trend, never silent: events the flood guard held back
    (recorded, not sent) and the link's refusals."""
    held = f" held {cam.flood_suppressed_total:.0f}" if cam.flood_suppressed_total else ""
    note = link_note(cam)
    return f"{held} {note}" if note else held


def link_families(view: StateView) -> Iterator[Metric]:
    """What only the capture host knows: its messages the link took, and verdicts dropped."""
    accepted = CounterMetricFamily(
        "vadmon_link_accepted_total",
        "Capture host: this camera's messages the inference host's link accepted (its verdict).",
        labels=["camera"],
    )
    ignored = CounterMetricFamily(
        "vadmon_link_verdicts_ignored_total",
        "Capture host: verdicts dropped (malformed, oversized, foreign = about another "
        "camera, rate = too many).",
        labels=["camera", "reason"],
    )
    for cam in view.cameras:
        if cam.link is None:
            continue
        accepted.add_metric([cam.name], cam.link.accepted_total)
        for reason, n in sorted(cam.link.ignored.items()):
            ignored.add_metric([cam.name, reason], n)
    yield accepted
    yield ignored
