"""Helpers shared by tests (moved from test_dashboard.py; test modules import only *_support modules)."""

from __future__ import annotations

import json

from rich.console import Console

from vadmon.dashboard.console import DEMO_BANNER, DashboardState, render
from vadmon.runtime.child import ChildStatus
from vadmon.runtime.heartbeat import (
    TOPIC,
    parse_heartbeat,
)
from vadmon.runtime.status_schema import (
    ALERT_LATENCY_BUCKETS,
    INFERENCE_LATENCY_BUCKETS,
    Histogram,
)

NOW = 1_718_000_000.0


def capture_fields(
    camera: str, state: str, fps: float | None = 9.8, reconnects: int = 0, error: str = ""
) -> dict:
    info = {"source": "rtsp://***@10.0.0.5/stream1", "resolution": "768x576"}
    if error:
        info.update(error=error, retry_in_s=4.0)
    return {
        "camera": camera,
        "state": state,
        "counters": {
            "frames_total": 1200,
            "fps": fps,
            "snippet_drops_total": 2,
            "reconnects_total": reconnects,
            "stalls_total": 1,
            "snippets_total": 75,
        },
        "info": info,
    }


def histogram(buckets: tuple[float, ...], values: list[float]) -> dict:
    h = Histogram(buckets)
    for v in values:
        h.observe(v)
    return h.body()


def inference_fields(
    cams: dict[str, tuple[float, str, float]], history: list[float] | None = None, n: int = 5
) -> dict:
    cameras = {
        name: {
            "score": score,
            "label": label,
            "label_prob": prob,
            "fps": 0.6,
            "skipped_total": 7,
            "snippets_total": n,
            "latency_ms": 42.0,
            "last_ts": NOW,
            "recent_scores": history if history is not None else [score] * n,
        }
        for name, (score, label, prob) in cams.items()
    }
    latency = histogram(INFERENCE_LATENCY_BUCKETS, [0.042] * (n * len(cams)))
    info = {"device": "cpu", "precision": "fp32", "mode": "vadclip"}
    return {"info": {**info, "cameras": cameras, "latency": latency}}


def alerts_fields(events: list[dict], latencies: list[float] | None = None, hooks: int = 1) -> dict:
    return {
        "counters": {"pending": 4, "delivered": 17, "retrying": 2, "dead": 1, "events_total": 9},
        "info": {
            "webhooks": hooks,
            "recent_events": events,
            "alert_latency": histogram(ALERT_LATENCY_BUCKETS, latencies or []),
        },
    }


def wire(process: str, fields: dict, ts: float = NOW) -> list[bytes]:
    body = {"process": process, "ts": ts, "pid": 1234, **fields}
    return [TOPIC, json.dumps(body).encode()]


def feed(state: DashboardState, process: str, fields: dict, now: float = NOW) -> None:
    hb = parse_heartbeat(wire(process, fields, now))
    assert hb is not None and hb.body is not None, hb
    unknown = _unknown_keys(fields, hb.body.model_dump())
    assert not unknown, f"fields the schema does not have (production never sends): {unknown}"
    state.update_heartbeat(hb, now=now)


def _unknown_keys(sent: object, kept: object, where: str = "") -> list[str]:
    if isinstance(sent, dict) and isinstance(kept, dict):
        out = [f"{where}.{k}" for k in sent if k not in kept]
        for k in sent:
            if k in kept:
                out += _unknown_keys(sent[k], kept[k], f"{where}.{k}")
        return out
    if isinstance(sent, list) and isinstance(kept, list):
        return [x for s, k in zip(sent, kept, strict=False) for x in _unknown_keys(s, k, where)]
    return []


EVENTS = [
    {
        "id": "1717999990.000000-abc123",
        "camera": "door",
        "label": "Fighting",
        "prob": 0.81,
        "start": NOW - 10,
        "duration": 10.0,
        "kind": "update",
    },
    {
        "id": "1717999000.000000-def456",
        "camera": "yard",
        "label": "Road Accident",
        "prob": 0.66,
        "start": NOW - 1000,
        "duration": 75.0,
        "kind": "end",
    },
]


def example_state(banner: str | None = DEMO_BANNER) -> DashboardState:
    state = DashboardState(banner=banner)
    feed(state, "capture:door", capture_fields("door", "online"))
    feed(
        state,
        "capture:yard",
        capture_fields("yard", "stalled", fps=0.0, reconnects=3, error="timeout: no frame"),
    )
    feed(state, "capture:gate", capture_fields("gate", "connecting", fps=None))
    cams = {
        "door": (0.87, "Fighting", 0.81),
        "yard": (0.12, "Normal", 0.93),
        "gate": (0.05, "Normal", 0.97),
    }
    feed(state, "inference", inference_fields(cams))
    feed(state, "alerts", alerts_fields(EVENTS, [0.120, 0.080]))
    state.update_children(
        {
            "capture:door": ChildStatus("capture:door", state="running", restarts=0),
            "capture:yard": ChildStatus("capture:yard", state="running", restarts=2),
            "capture:gate": ChildStatus("capture:gate", state="running"),
            "inference": ChildStatus("inference", state="running"),
            "alerts": ChildStatus("alerts", state="backoff", restarts=5),
        }
    )
    return state


def record(state: DashboardState, now: float = NOW, width: int = 100, height: int = 30) -> str:
    console = Console(record=True, width=width, height=height, force_terminal=True)
    console.print(render(state, width, height, now=now))
    return console.export_text()
