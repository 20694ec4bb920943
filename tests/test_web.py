"""The web process for real: ``python -m vadmon.web`` (uvicorn) on 127.0.0.1, events made by
the real alert pipeline (snapshots, MP4 clips, score logs, outbox rows), httpx as the client.

Each API route; HTTP Range (206, Content-Range, 416); signed links valid / expired / tampered;
traversal refused (``../``, ``%2e%2e``, absolute paths, rows and symlinks out of the media
store); authentication where it must be, CSRF and size limits; live state and frames from a
real ZeroMQ PUB standing in for a camera's capture process.
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import zmq
from web_support import TOKEN, WebServer, frame_jpeg, load, make_events, web_config

from vadmon.alerts.links import load_key, sign_path
from vadmon.runtime.heartbeat import TOPIC, encode
from vadmon.runtime.messages import PreviewFrame, ScoreMessage
from vadmon.runtime.status_schema import CaptureCounters, CaptureInfo, CaptureStatus
from vadmon.settings import camera_endpoints, score_endpoint


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Iterator[tuple[WebServer, list[str]]]:
    tmp = Path(str(tmp_path_factory.mktemp("web", numbered=True)))
    cfg = web_config(tmp)
    ids = make_events(cfg, ("door", "yard"))
    with WebServer(cfg) as server:
        yield server, ids


def stored(server: WebServer, event_id: str) -> dict:
    db = sqlite3.connect(load(server.config).storage.outbox_db)
    try:
        return json.loads(
            db.execute("SELECT data FROM events WHERE id=?", (event_id,)).fetchone()[0]
        )
    finally:
        db.close()


def test_event_routes_list_filter_page_and_describe(site) -> None:
    server, (door, yard) = site
    with server.client() as c:
        assert c.get("/api/health").json()["status"] == "ok"
        page = c.get("/api/events").json()
        assert [e["id"] for e in page["events"]] == [yard, door]  # newest first
        assert page["next_cursor"] is None
        ev = page["events"][1]
        assert ev["camera"] == "door" and ev["label"] == "fighting" and ev["state"] == "closed"
        assert ev["snapshot_url"].endswith(f"/{door}/snapshot.jpg")
        assert "snapshot_path" not in ev and "clip_path" not in ev  # no local paths out
        assert [
            e["id"] for e in c.get("/api/events", params={"camera": "yard"}).json()["events"]
        ] == [yard]
        assert c.get("/api/events", params={"label": "explosion"}).json()["events"] == []
        since = ev["start_ts"] + 1
        assert [
            e["id"] for e in c.get("/api/events", params={"since": since}).json()["events"]
        ] == [yard]
        assert [
            e["id"] for e in c.get("/api/events", params={"until": since}).json()["events"]
        ] == [door]
        first = c.get("/api/events", params={"limit": 1}).json()
        assert [e["id"] for e in first["events"]] == [yard] and first["next_cursor"]
        second = c.get("/api/events", params={"limit": 1, "cursor": first["next_cursor"]}).json()
        assert [e["id"] for e in second["events"]] == [door] and second["next_cursor"] is None
        assert c.get("/api/events", params={"cursor": "bm9wZQ"}).status_code == 400
        assert c.get("/api/events", params={"camera": "nope"}).status_code == 404
        one = c.get(f"/api/events/{door}").json()
        assert one["id"] == door and one["explanation"]["text"] and one["feedback"] is None
        curve = c.get(f"/api/events/{door}/scores").json()
        assert len(curve["t"]) >= 10 and max(curve["score"]) == pytest.approx(0.9, abs=1e-3)
        assert c.get("/api/events/1700000000.000000-zzzzzz").status_code == 404
        schema = c.get("/openapi.json").json()
        assert {"/api/events", "/api/events/{event_id}/clip.mp4", "/api/cameras"} <= set(
            schema["paths"]
        )
        cams = c.get("/api/cameras").json()
        assert {x["name"] for x in cams} == {"door", "yard"}
        assert all(x["state"] == "connecting" for x in cams)  # no capture running


def test_snapshot_and_clip_with_range(site) -> None:
    server, (door, _) = site
    data = stored(server, door)
    clip = Path(data["clip_path"]).read_bytes()
    with server.client() as c:
        snap = c.get(f"/api/events/{door}/snapshot.jpg")
        assert snap.headers["content-type"] == "image/jpeg"
        assert snap.content == Path(data["snapshot_path"]).read_bytes()
        whole = c.get(f"/api/events/{door}/clip.mp4")
        assert whole.status_code == 200 and whole.headers["content-type"] == "video/mp4"
        assert whole.content == clip and whole.headers["accept-ranges"] == "bytes"
        part = c.get(f"/api/events/{door}/clip.mp4", headers={"range": "bytes=10-109"})
        assert part.status_code == 206 and part.content == clip[10:110]
        assert part.headers["content-range"] == f"bytes 10-109/{len(clip)}"
        tail = c.get(f"/api/events/{door}/clip.mp4", headers={"range": "bytes=-50"})
        assert tail.status_code == 206 and tail.content == clip[-50:]
        rest = c.get(f"/api/events/{door}/clip.mp4", headers={"range": f"bytes={len(clip) - 7}-"})
        assert rest.status_code == 206 and rest.content == clip[-7:]
        over = c.get(f"/api/events/{door}/clip.mp4", headers={"range": f"bytes={len(clip)}-"})
        assert over.status_code == 416 and over.headers["content-range"] == f"bytes */{len(clip)}"


def test_signed_links_valid_expired_and_tampered(site) -> None:
    server, (door, yard) = site
    data = stored(server, door)  # the links the alert pipeline put in the webhook body
    with server.client(auth=False) as c:
        snap = c.get(data["snapshot_url"])
        assert snap.status_code == 200 and snap.headers["content-type"] == "image/jpeg"
        clip = c.get(data["clip_url"], headers={"range": "bytes=0-3"})
        assert clip.status_code == 206 and clip.headers["content-type"] == "video/mp4"
        page = c.get(data["event_url"])
        assert page.status_code == 200 and "<video" in page.text and TOKEN not in page.text
        video_src = page.text.split('<video src="')[1].split('"')[0].replace("&amp;", "&")
        assert c.get(video_src).status_code == 200  # the share page's own links work too
        sig = data["snapshot_url"].split("sig=")[1]
        flipped = data["snapshot_url"].replace(sig, ("A" if sig[0] != "A" else "B") + sig[1:])
        assert c.get(flipped).status_code == 401
        other = data["snapshot_url"].replace(door, yard)  # the signature of another path
        assert c.get(other).status_code == 401
        later = data["snapshot_url"].replace(
            f"exp={data['links_expire_ts']}", f"exp={data['links_expire_ts'] + 1}"
        )
        assert c.get(later).status_code == 401
        key = load_key(load(server.config).storage.dir / "web" / "links.key")
        expired = sign_path(key, f"/api/events/{door}/snapshot.jpg", int(time.time()) - 1)
        assert c.get(expired).status_code == 401
        fresh = sign_path(key, f"/api/events/{door}/snapshot.jpg", int(time.time()) + 60)
        assert c.get(fresh).status_code == 200
        assert c.get(f"/api/events?{fresh.split('?')[1]}").status_code == 401  # only that path


def test_traversal_and_foreign_files_refused(site, tmp_path) -> None:
    server, (door, yard) = site
    media = load(server.config).storage.media_dir
    with server.client() as c:
        for bad in ("..%2f..%2fetc%2fpasswd", "%2e%2e", "%2e%2e%2f" * 3 + "etc%2fpasswd",
                    "%2fetc%2fpasswd", "..", door + "%2f.."):  # fmt: skip
            for tail in ("", "/snapshot.jpg", "/clip.mp4"):
                assert c.get(f"/api/events/{bad}{tail}").status_code in (404, 405), bad + tail
        assert c.get("/api/cameras/..%2f..%2fetc/latest.jpg").status_code == 404
        assert c.get("/static/..%2f..%2fconfig%2fweb.py").status_code == 404
        # a row pointing out of the store, and a symlink planted in it pointing out
        outside = tmp_path / "secret.jpg"
        outside.write_bytes(b"\xff\xd8 not yours")
        link = media / "yard" / "planted.jpg"
        os.symlink(outside, link)
        db = sqlite3.connect(load(server.config).storage.outbox_db)
        try:
            for event_id, path in ((door, str(outside)), (yard, str(link))):
                data = stored(server, event_id)
                with db:
                    db.execute("UPDATE events SET data=? WHERE id=?",
                               (json.dumps({**data, "snapshot_path": path}), event_id))  # fmt: skip
                assert c.get(f"/api/events/{event_id}/snapshot.jpg").status_code == 404
                with db:
                    db.execute("UPDATE events SET data=? WHERE id=?", (json.dumps(data), event_id))
        finally:
            db.close()
            link.unlink()
        assert c.get(f"/api/events/{door}/snapshot.jpg").status_code == 200


def test_every_route_needs_auth_and_posts_need_csrf(site) -> None:
    server, (door, _) = site
    routes = ["/api/health", "/api/cameras", "/api/events", f"/api/events/{door}",
              f"/api/events/{door}/scores", f"/api/events/{door}/snapshot.jpg",
              f"/api/events/{door}/clip.mp4", "/api/cameras/door/latest.jpg",
              "/api/cameras/door/live.mjpeg", "/openapi.json", f"/e/{door}"]  # fmt: skip
    with server.client(auth=False) as c:
        schema_paths = set()
        for path in routes:
            assert c.get(path).status_code == 401, path
            assert (
                c.get(path, headers={"authorization": "Bearer wrong-token-0123456789"}).status_code
                == 401
            )
        with server.client() as authed:
            schema_paths = set(authed.get("/openapi.json").json()["paths"])
        covered = {p.replace(door, "{event_id}").replace("/door/", "/{name}/") for p in routes}
        assert schema_paths - covered <= {
            "/api/session",
            "/api/logout",
            "/api/events/{event_id}/feedback",
        }
        fb = {"verdict": "confirmed", "note": ""}
        assert (
            c.post(
                f"/api/events/{door}/feedback", json=fb, headers={"x-vadmon-request": "1"}
            ).status_code
            == 401
        )
        page = c.get("/")  # the page shell is public and holds no data or credentials
        assert page.status_code == 200 and TOKEN not in page.text and door not in page.text
        assert (
            "access-control-allow-origin"
            not in c.get("/", headers={"origin": "http://evil.test"}).headers
        )
        assert c.post("/api/session", json={"token": TOKEN}).status_code == 403  # no CSRF header
        csrf = {"x-vadmon-request": "1"}
        assert c.post("/api/session", json={"token": "x" * 20}, headers=csrf).status_code == 401
        typo = c.post("/api/session", json={"token": TOKEN, "extra": TOKEN}, headers=csrf)
        assert typo.status_code == 422 and TOKEN not in typo.text  # input never echoed
        login = c.post("/api/session", json={"token": TOKEN}, headers=csrf)
        assert login.status_code == 204
        cookie = login.headers["set-cookie"].lower()
        assert "httponly" in cookie and "samesite=strict" in cookie and TOKEN.lower() not in cookie
        assert c.get("/api/events").status_code == 200  # the session cookie
        assert c.post(f"/api/events/{door}/feedback", json=fb).status_code == 403  # cookie, no CSRF
        evil = {**csrf, "origin": "http://evil.test"}
        assert c.post(f"/api/events/{door}/feedback", json=fb, headers=evil).status_code == 403
        big = {"verdict": "confirmed", "note": "x" * 20000}
        assert c.post(f"/api/events/{door}/feedback", json=big, headers=csrf).status_code == 413
        c.post("/api/logout", headers=csrf)
        c.cookies.clear()
        assert c.get("/api/events").status_code == 401


def test_feedback_is_stored_and_returned(site) -> None:
    server, (door, _) = site
    with server.client() as c:
        body = {"verdict": "false_alarm", "note": "a shadow"}
        assert c.post(f"/api/events/{door}/feedback", json=body).status_code == 200
        assert c.get(f"/api/events/{door}").json()["feedback"]["verdict"] == "false_alarm"
        listed = {e["id"]: e for e in c.get("/api/events").json()["events"]}
        assert listed[door]["feedback"]["note"] == "a shadow"
        assert c.post(f"/api/events/{door}/feedback", json={"verdict": "maybe"}).status_code == 422
        missing = "1700000000.000000-zzzzzz"
        assert c.post(f"/api/events/{missing}/feedback", json=body).status_code == 404


def test_live_state_latest_frame_and_mjpeg(site) -> None:
    server, _ = site
    ctx = zmq.Context.instance()
    pub = ctx.socket(zmq.PUB)  # stands in for capture:door's PUB
    load(server.config).ipc_dir().mkdir(parents=True, exist_ok=True)
    pub.bind(camera_endpoints(load(server.config), "door").publish)
    scores = ctx.socket(zmq.PUB)  # stands in for inference's score PUB
    scores.bind(score_endpoint(load(server.config)))
    jpeg = frame_jpeg(7, red=True)
    try:
        with server.client() as c:
            deadline, cams = time.monotonic() + 20, []
            seq = 0
            while time.monotonic() < deadline:
                seq += 1
                pub.send_multipart(PreviewFrame("door", seq, time.time(), 48, 64).to_parts(jpeg))
                status = CaptureStatus(camera="door", state="online",
                                       counters=CaptureCounters(frames_total=5, fps=10.0),
                                       info=CaptureInfo(source="synthetic", width=64, height=48))  # fmt: skip
                pub.send_multipart([TOPIC, encode("capture:door", status)])
                msg = ScoreMessage(
                    "door",
                    seq,
                    time.time() - 1,
                    time.time(),
                    0.42,
                    0.42,
                    ["normal", "x"],
                    [0.58, 0.42],
                )
                scores.send_multipart(msg.to_parts())
                cams = {x["name"]: x for x in c.get("/api/cameras").json()}
                door = cams["door"]
                if door["state"] == "online" and door["last_frame_ts"] and door["score"]:
                    break
                time.sleep(0.05)
            assert cams["door"]["state"] == "online" and cams["door"]["reason"] == ""
            assert cams["door"]["score"] == 0.42 and cams["yard"]["score"] is None
            assert cams["yard"]["state"] == "connecting"
            latest = c.get("/api/cameras/door/latest.jpg")
            assert latest.headers["content-type"] == "image/jpeg" and latest.content == jpeg
            assert c.get("/api/cameras/yard/latest.jpg").status_code == 404
            with c.stream("GET", "/api/cameras/door/live.mjpeg") as live:
                assert live.headers["content-type"].startswith("multipart/x-mixed-replace")
                got = b""
                for chunk in live.iter_bytes():
                    got += chunk
                    if got.count(b"--vadmonframe") >= 1 and jpeg in got:
                        break
            assert jpeg in got
    finally:
        pub.close(0)
        scores.close(0)
