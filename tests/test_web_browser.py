"""The review page in real headless Chromium (Debian's, driven by Playwright): log in, the
events listed newest first with snapshots and score curves, a clip plays, a "false alarm"
click survives a reload and shows in ``vadmon events``; no console errors on the way.

The page's weight (HTML + JS + CSS, as transferred) is printed for the record.
"""

from __future__ import annotations

import contextlib
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import zmq
from conftest import missing, require_tool
from web_support import TOKEN, WebServer, env, frame_jpeg, load, make_events, web_config

from vadmon.runtime.messages import PreviewFrame, Status
from vadmon.settings import camera_endpoints

ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]  # fmt: skip
SHOT = Path("/tmp/vadmon-web-review.png")  # kept for the docs / reviewers


@pytest.fixture(scope="module")
def browser():
    chromium = require_tool("chromium", "chromium")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        missing("playwright (python)", "pip install -e '.[dev]' (the browser is Debian's)")
    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=chromium, headless=True, args=ARGS)
        yield b
        b.close()


@contextlib.contextmanager
def camera_feed(config: Path, camera: str) -> Iterator[None]:
    """A ZeroMQ PUB at the camera's capture endpoint sending previews and ``online`` status,
    as the capture process does, until the block ends."""
    cfg = load(config)
    cfg.ipc_dir().mkdir(parents=True, exist_ok=True)
    pub = zmq.Context.instance().socket(zmq.PUB)
    pub.bind(camera_endpoints(cfg, camera).publish)
    stop = threading.Event()

    def send() -> None:
        seq = 0
        while not stop.wait(0.2):
            seq += 1
            now = time.time()
            pub.send_multipart(
                PreviewFrame(camera, seq, now, 48, 64).to_parts(frame_jpeg(seq, False))
            )
            info = {"source": "synthetic", "width": 64, "height": 48}
            pub.send_multipart(
                Status("capture", now, camera, "online", {"frames": float(seq)}, info).to_parts()
            )

    thread = threading.Thread(target=send, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(2)
        pub.close(0)


def test_review_page_lists_plays_and_keeps_a_false_alarm(browser, tmp_path: Path) -> None:
    cfg = web_config(tmp_path)
    door, yard = make_events(cfg, ("door", "yard"))
    with WebServer(cfg) as server, camera_feed(cfg, "door"):
        page = browser.new_page(viewport={"width": 1100, "height": 800})
        problems: list[str] = []
        page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: problems.append(str(e)))
        sizes: dict[str, int] = {}
        page.on(
            "response",
            lambda r: (
                sizes.__setitem__(r.url, len(r.body()))
                if r.url.split("?")[0].endswith(("/", ".js", ".css"))
                else None
            ),
        )
        page.goto(server.base + "/")
        page.wait_for_selector("#login:not([hidden])")
        assert page.locator("[data-event]").count() == 0  # nothing before the login
        page.fill("#token", TOKEN)
        page.click("#login button")
        page.wait_for_function("() => document.querySelectorAll('[data-event]').length === 2")
        assert not page.is_visible("#login")
        ids = page.eval_on_selector_all("[data-event]", "els => els.map(e => e.dataset.event)")
        assert ids == [yard, door]  # newest first
        page.wait_for_function(
            "() => document.querySelectorAll('.event .curve polyline').length === 2"
        )
        page.wait_for_function(
            "() => [...document.querySelectorAll('.event img')].every(i => i.complete && i.naturalWidth > 0)"
        )
        assert "fighting" in page.inner_text(f"[data-event='{door}']")
        assert page.locator(".camera").count() == 2
        page.wait_for_selector("[data-camera='door'] .state.online")
        page.wait_for_function(
            "() => document.querySelector(\"[data-camera='door'] img\").naturalWidth === 64"
        )
        assert "no status" in page.inner_text("[data-camera='yard'] .reason")
        page.screenshot(path=str(SHOT), full_page=True)

        page.click(f"[data-event='{door}']")
        page.wait_for_selector("#detail[open]")
        page.wait_for_function("() => document.getElementById('d-clip').readyState >= 2")
        t0 = page.evaluate("() => document.getElementById('d-clip').currentTime")
        page.wait_for_function(f"() => document.getElementById('d-clip').currentTime > {t0} + 0.2")
        page.fill("#d-note", "the shadow of a tree")
        page.click("#d-false")
        page.wait_for_function(
            "() => document.getElementById('d-state').textContent === 'marked false alarm'"
        )
        page.reload()
        page.wait_for_selector(f"[data-event='{door}'] .verdict.false_alarm")
        assert page.locator(f"[data-event='{yard}'] .verdict").count() == 0
        weight = sum(sizes.values())
        print(f"page weight (HTML+JS+CSS): {weight / 1024:.1f} kB; screenshot {SHOT}")
        assert not problems, problems
    out = subprocess.run(
        [sys.executable, "-m", "vadmon", "events", "--db", str(load(cfg).storage.outbox_db)],
        capture_output=True, text=True, env=env(), check=True,
    ).stdout  # fmt: skip
    line = next(row for row in out.splitlines() if row.startswith(door + " "))
    assert line.split()[-1] == "false_alarm", out
    assert f"{door} review note: the shadow of a tree" in out
