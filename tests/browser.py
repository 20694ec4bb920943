"""Play a video file in a real headless Chromium and report what its <video> element saw.

No driver is needed: the page writes the element's state into the DOM on ``loadeddata`` (or
``error``) and ``--dump-dom`` with a virtual-time budget prints the DOM once the page settled.
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

from conftest import require_tool

PAGE = """<!doctype html><html><body>
<video id="v" src="{src}" preload="auto" muted></video><pre id="out">pending</pre>
<script>
const v = document.getElementById("v"), out = document.getElementById("out");
function report(tag) {{
  out.textContent = JSON.stringify({{tag: tag, readyState: v.readyState, duration: v.duration,
    error: v.error && v.error.code, width: v.videoWidth, height: v.videoHeight}});
}}
v.addEventListener("loadeddata", () => report("loadeddata"));
v.addEventListener("error", () => report("error"));
</script></body></html>
"""


def play(video: Path, timeout_s: float = 60.0) -> dict:
    """Load ``video`` in a page beside it; returns the element's readyState, duration, size."""
    video = Path(video).resolve()
    page = video.parent / f".play-{video.stem}.html"
    page.write_text(PAGE.format(src=video.name))
    try:
        out = subprocess.run(
            [require_tool("chromium", "chromium"), "--headless", "--no-sandbox", "--disable-gpu",
             "--virtual-time-budget=10000", "--dump-dom", page.as_uri()],
            capture_output=True, text=True, timeout=timeout_s, check=False,
        )  # fmt: skip
    finally:
        page.unlink()
    found = re.search(r'<pre id="out">([^<]*)</pre>', out.stdout)
    assert found, f"no result from chromium (rc {out.returncode}): {out.stderr[-2000:]}"
    return json.loads(found.group(1).replace("&quot;", '"'))
