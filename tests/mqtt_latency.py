"""Score → MQTT event latency on loopback (a measurement for docs/MQTT.md, not a test).

The real alert loop (``run_alerts``, in a thread) gets ScoreMessages over its ZeroMQ socket;
a real mosquitto and a real subscriber on 127.0.0.1. One sample = the wall time from sending
the score that opens an event to the subscriber receiving that event's ``new`` on
``<prefix>/events`` (outbox commit with fsync, PUBACK wait and broker hop included).

    PYTHONPATH=$PWD python tests/mqtt_latency.py [--cameras 10] [--rounds 10]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import zmq

sys.path.insert(0, str(Path(__file__).parent))

from mqtt_support import Broker, Watcher, mqtt_section, wait_until  # noqa: E402

from vadmon.alerts.outbox import Outbox  # noqa: E402
from vadmon.alerts.process import run_alerts  # noqa: E402
from vadmon.config import load_config  # noqa: E402
from vadmon.runtime.messages import ScoreMessage  # noqa: E402
from vadmon.runtime.transport import ipc_dir  # noqa: E402
from vadmon.settings import alert_settings, score_endpoint  # noqa: E402

CLASSES = ["normal", "fighting", "explosion"]


def write_config(d: Path, url: str, cameras: int) -> Path:
    cams = "".join(f'  cam{i}: {{source: "synthetic:"}}\n' for i in range(cameras))
    text = (
        "instance: mqtt-latency\n"
        "defaults:\n  alerts: {threshold: 0.6, min_duration_s: 0, cutoff_s: 0.5, cooldown_s: 0,"
        " pre_capture_s: 0, post_capture_s: 0, smoothing: {kind: none}}\n"
        f"cameras:\n{cams}model: {{mode: vadclip, checkpoint: model.pt}}\n"
        f"storage: {{dir: {d / 'data'}}}\ntransport: {{ipc_dir: {d / 'ipc'}}}\n" + mqtt_section(url)
    )
    path = d / "monitor.yaml"
    path.write_text(text)
    return path


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--cameras", type=int, default=10)
    ap.add_argument("--rounds", type=int, default=10)  # ≤ 10: the per-camera flood bound
    args = ap.parse_args()
    d = Path(tempfile.mkdtemp(prefix="vadm-mqtt-lat-"))
    broker = Broker(d / "broker")
    watcher = Watcher(broker, "vadmon/events")
    cfg = load_config(write_config(d, broker.url, args.cameras))
    ipc_dir(cfg.ipc_dir())
    ctx = zmq.Context()
    pub = ctx.socket(zmq.XPUB)
    pub.bind(score_endpoint(cfg))
    stop = threading.Event()
    loop = threading.Thread(
        target=run_alerts,
        args=(alert_settings(cfg), stop),
    )
    loop.start()
    assert pub.poll(20_000) and pub.recv().startswith(b"\x01"), "alert loop never subscribed"
    sent: dict[tuple[str, float], float] = {}
    index = dict.fromkeys((f"cam{i}" for i in range(args.cameras)), 0)
    base = time.time() - 3600

    def send(camera: str, value: float) -> float:
        i = index[camera]
        index[camera] += 1
        probs = [0.1, 0.8, 0.1] if value > 0.5 else [0.9, 0.05, 0.05]
        msg = ScoreMessage(camera, i, base + 0.5 * i, base + 0.5 * (i + 1), value, value,
                           CLASSES, probs, t_emitted=time.time())  # fmt: skip
        pub.send_multipart(msg.to_parts())
        return msg.t_start

    try:
        for _ in range(args.rounds):
            for camera in index:
                t = time.time()
                sent[(camera, send(camera, 0.95))] = t
                time.sleep(0.1)  # one event at a time: latency, not queueing
            for camera in index:
                for _ in range(3):
                    send(camera, 0.05)
        wait_until(lambda: len(new_events(watcher)) >= len(sent), 60, "every new event")
    finally:
        stop.set()
        loop.join(30)
        watcher.close()
        broker.close()
        pub.close(0)
        ctx.term()
    lat = sorted((m.t - sent[(a["camera"], a["start_ts"])]) * 1000 for m, a in new_events(watcher))
    report("score -> MQTT new", lat)
    # the two halves: score sent -> row committed, row committed -> subscriber has it
    outbox = Outbox(cfg.storage.outbox_db, readonly=True)
    created = {d.event_id: d.created_at for d in outbox.deliveries() if d.kind == "start"
               and d.endpoint == "mqtt:vadmon/events"}  # fmt: skip
    outbox.close()
    news = new_events(watcher)
    report("  score -> outbox row", [(created[a["id"]] - sent[(a["camera"], a["start_ts"])])
                                      * 1000 for _, a in news])  # fmt: skip
    report("  outbox row -> MQTT", [(m.t - created[a["id"]]) * 1000 for m, a in news])


def report(what: str, lat: list[float]) -> None:
    lat = sorted(lat)
    q = statistics.quantiles(lat, n=20)
    print(f"{what}: samples {len(lat)}  p50 {statistics.median(lat):.1f} ms  "
          f"p95 {q[18]:.1f} ms  max {lat[-1]:.1f} ms")  # fmt: skip


def new_events(watcher: Watcher) -> list:
    out = []
    for m in watcher.on("vadmon/events"):
        doc = m.json
        if doc["type"] == "new":
            out.append((m, doc["after"]))
    return out


if __name__ == "__main__":
    main()
