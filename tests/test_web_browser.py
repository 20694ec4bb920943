"""The review page in real headless Chromium (Debian's, driven by Playwright): log in, the
events listed newest first with snapshots and score curves, a clip plays, a "false alarm"
click survives a reload and shows in ``vadmon events``; no console errors on the way.

The page's weight (HTML + JS + CSS, as transferred) is printed for the record.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from conftest import require_tool
from web_support import TOKEN, WebServer, env, load, make_events, web_config

ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]  # fmt: skip
SHOT = Path("/tmp/vadmon-web-review.png")  # kept for the docs / reviewers


@pytest.fixture(scope="module")
def browser():
    chromium = require_tool("chromium", "chromium")
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=chromium, headless=True, args=ARGS)
        yield b
        b.close()


def test_review_page_lists_plays_and_keeps_a_false_alarm(browser, tmp_path: Path) -> None:
    cfg = web_config(tmp_path)
    door, yard = make_events(cfg, ("door", "yard"))
    with WebServer(cfg) as server:
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
