"""Helpers shared by tests (moved from test_web_alerts.py; test modules import only *_support modules)."""

from __future__ import annotations

import json

import httpx

from vadmon.alerts.signing import generate_secret

SECRET = generate_secret()


def fetch_links(req) -> dict[str, tuple[int, str]]:
    """What a receiver elsewhere does with an ``end`` payload: fetch its media by URL."""
    body = json.loads(req.body)
    if body["type"] != "vadmon.event.end":
        return {}
    out = {}
    for key in ("snapshot_url", "clip_url", "event_url"):
        resp = httpx.get(body["data"][key], timeout=10.0, trust_env=False)
        out[key] = (resp.status_code, resp.headers.get("content-type", ""), len(resp.content))
    return out


def hooks(url: str) -> str:
    return (
        "webhooks:\n"
        f"  - {{name: rich, url: '{url}', secret: '{SECRET}', allow_private: true, embed_snapshot: true}}\n"
        f"  - {{name: plain, url: '{url}', secret: '{SECRET}', allow_private: true}}\n"
    )
