"""One real run of the demo monitor with the web process on (supervisor, capture, inference,
alerts, web): a webhook receiver on 127.0.0.1 fetches ``snapshot_url`` and ``clip_url`` from
a real ``end`` payload (image/jpeg, video/mp4); then the review page in real headless
Chromium (Debian's, driven by Playwright) lists the demo's events, the live camera's
thumbnail and state, plays a clip, and keeps a "false alarm" click across a reload, which
``vadmon events`` then shows. No console errors on the way.

The page's weight (HTML + JS + CSS, as transferred) is printed for the record.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import missing, require_tool
from monitor_support import short_dir
from web_alerts_support import SECRET, fetch_links, hooks
from web_support import REPO, free_port, wait_ready
from webhook_receiver import Receiver

from vadmon.config import load_config
from vadmon.demo import demo_config

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


def demo_with_web(checkpoint: Path, hook_url: str) -> Path:
    """The demo's own config, with a free port, an earlier first flash and a webhook."""
    workdir = short_dir("vweb-")
    shutil.copy(checkpoint, workdir / "demo-tiny.pt")
    path = demo_config(workdir)
    text = path.read_text().replace("127.0.0.1:8971", f"127.0.0.1:{free_port()}")
    path.write_text(text.replace("flash=20", "flash=6") + hooks(hook_url))
    return path


@pytest.mark.slow
def test_demo_alert_links_fetch_and_the_review_page_works(browser, demo_checkpoint) -> None:
    with Receiver([SECRET], inspect=fetch_links) as rx:
        path = demo_with_web(demo_checkpoint, rx.url)
        cfg = load_config(path)
        base = cfg.web.base_url()
        env = {**os.environ, "PYTHONPATH": str(REPO)}
        argv = [sys.executable, "-m", "vadmon", "run", "--config", str(path), "--no-dashboard"]
        log = path.with_suffix(".log")
        with open(log, "w") as out:
            proc = subprocess.Popen(argv, cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT)
            try:
                wait_ready(base, proc, log, timeout_s=90)
                deadline = time.monotonic() + 90
                while time.monotonic() < deadline and not any(r.seen for r in rx.requests):
                    assert proc.poll() is None, log.read_text()[-3000:]
                    time.sleep(0.2)
                ends = [r for r in rx.requests if r.seen]
                assert ends, log.read_text()[-3000:]
                seen = ends[0].seen
                assert seen["snapshot_url"][:2] == (200, "image/jpeg"), seen
                assert seen["clip_url"][:2] == (200, "video/mp4"), seen
                event_id = json.loads(ends[0].body)["data"]["id"]
                review(browser, base, event_id)
            finally:
                proc.terminate()
                proc.wait(30)
    text = log.read_text()
    assert f"review page and API at {base}/" in text  # the monitor printed the URL
    out = subprocess.run(
        [sys.executable, "-m", "vadmon", "events", "--db", str(cfg.storage.outbox_db)],
        capture_output=True, text=True, env=env, check=True,
    ).stdout  # fmt: skip
    line = next(row for row in out.splitlines() if row.startswith(event_id + " "))
    assert line.split()[-1] == "false_alarm", out
    assert f"{event_id} review note: the shadow of a tree" in out


def review(browser, base: str, event_id: str) -> None:
    """The review page against the running demo (auth off: loopback)."""
    page = browser.new_page(viewport={"width": 1100, "height": 800})
    problems: list[str] = []
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: problems.append(str(e)))
    sizes: dict[str, int] = {}

    def count(resp) -> None:
        if resp.url.split("?")[0].endswith(("/", ".js", ".css")):
            sizes[resp.url] = len(resp.body())

    page.on("response", count)
    page.goto(base + "/")
    row = f"[data-event='{event_id}']"
    page.wait_for_selector(row)
    assert not page.is_visible("#login")  # auth is off on loopback: no login
    starts = page.eval_on_selector_all(
        "[data-event]", "els => els.map(e => e.querySelector('.meta').textContent)"
    )
    assert len(starts) >= 1
    page.wait_for_selector("[data-camera='synthetic'] .state.online")
    page.wait_for_function(
        "() => document.querySelector(\"[data-camera='synthetic'] img\").naturalWidth > 0"
    )
    page.wait_for_function(f'() => document.querySelector("{row} .curve polyline") !== null')
    page.wait_for_function(
        f'() => document.querySelector("{row} img").complete'
        f' && document.querySelector("{row} img").naturalWidth > 0'
    )
    page.screenshot(path=str(SHOT), full_page=True)
    page.click(row)
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
    page.wait_for_selector(f"{row} .verdict.false_alarm")
    print(f"page weight (HTML+JS+CSS): {sum(sizes.values()) / 1024:.1f} KiB; screenshot {SHOT}")
    assert not problems, problems
    page.close()
