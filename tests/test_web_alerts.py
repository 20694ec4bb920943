"""Links in every alert, fetched for real: a webhook receiver on 127.0.0.1 takes the payload,
reads ``data.snapshot_url`` / ``data.clip_url`` out of it and fetches them from the web
process (no login: the links are signed), getting ``image/jpeg`` and ``video/mp4``.

The fast test builds the events with the real alert pipeline in-process; the slow one runs
the demo monitor (supervisor, capture, inference, alerts and web processes) once.
"""

from __future__ import annotations

import base64
import json
import time
from pathlib import Path

import cv2
import numpy as np
from web_alerts_support import SECRET, fetch_links, hooks
from web_support import WebServer, free_port, make_events, web_config
from webhook_receiver import Receiver


def test_payloads_carry_signed_links_text_instance_and_an_embedded_snapshot(tmp_path: Path) -> None:
    port = free_port()
    with Receiver([SECRET], inspect=fetch_links) as rx:
        web = f"  public_url: http://localhost:{port}\n  link_ttl_s: 600\n"
        cfg = web_config(tmp_path, port=port, web=web, hooks=hooks(rx.url))
        with WebServer(cfg):
            before = time.time()
            make_events(cfg, ("door",))  # start + end, to both webhooks; shutdown flushes
            reqs = rx.wait_for(4, timeout=20, ok_only=True)
    bodies = [(r, json.loads(r.body)) for r in reqs]
    for _, body in bodies:
        data = body["data"]
        assert body["instance"] == "webtest"
        assert body["text"].startswith("[webtest] fighting") and data["event_url"] in body["text"]
        for key in ("snapshot_url", "clip_url", "event_url"):
            assert data[key].startswith(f"http://localhost:{port}/"), data[key]
            assert "sig=" in data[key] and "exp=" in data[key]
        assert before + 600 - 1 <= data["links_expire_ts"] <= time.time() + 600 + 1
    ends = [r for r, b in bodies if b["type"] == "vadmon.event.end"]
    assert len(ends) == 2
    for req in ends:
        assert req.seen["snapshot_url"][:2] == (200, "image/jpeg")
        assert req.seen["clip_url"][:2] == (200, "video/mp4") and req.seen["clip_url"][2] > 1000
        assert req.seen["event_url"][:2] == (200, "text/html; charset=utf-8")
    embedded = [b["data"] for _, b in bodies if "snapshot_jpeg" in b["data"]]
    plain = [b["data"] for _, b in bodies if "snapshot_jpeg" not in b["data"]]
    assert len(embedded) == 2 and len(plain) == 2  # rich got start + end with the image
    img = cv2.imdecode(np.frombuffer(base64.b64decode(embedded[0]["snapshot_jpeg"]), np.uint8), 1)
    assert img is not None and img.shape[1] <= 160


def test_without_the_web_process_alerts_have_text_and_instance_but_no_links(tmp_path: Path) -> None:
    with Receiver([SECRET]) as rx:
        cfg = web_config(tmp_path, hooks=hooks(rx.url), overrides={"web": {"enabled": False}})
        make_events(cfg, ("door",))
        reqs = rx.wait_for(4, timeout=20, ok_only=True)
    for req in reqs:
        body = json.loads(req.body)
        assert body["instance"] == "webtest" and body["text"].startswith("[webtest] ")
        assert "snapshot_url" not in body["data"] and "event_url" not in body["data"]
