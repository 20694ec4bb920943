"""The monitor as an operator sees it: a real ``vadmon run`` under tmux with its live view.

Real parts: the demo's tiny VadCLIP (fires on red), a file camera with red flashes, a camera
whose RTSP server refuses connections (its capture process logs a warning on every retry while
the view is live), a signed-webhook receiver on 127.0.0.1 and a Prometheus scrape over HTTP.
The pane is read at 100×30, 160×50 and 60×15: no child's log line may appear on it.
"""

from __future__ import annotations

import re
import shutil
import sys
from pathlib import Path

import httpx
import pytest
from capture_support import free_port, wait_for
from e2e_support import Tmux, monitor_config, tmux, write_flash_video  # noqa: F401
from prometheus_client.parser import text_string_to_metric_families
from rich.cells import cell_len
from webhook_receiver import Receiver

from vadmon.alerts.signing import generate_secret
from vadmon.dashboard.render import MIN_HEIGHT, MIN_WIDTH

REPO = Path(__file__).resolve().parents[1]
pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]
# what a log line looks like in any vadmon format (plain: "2026-… capture:gate WARNING …")
LOG_LINE = re.compile(
    r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d|\b(INFO|WARNING|ERROR|DEBUG)\b|Traceback|\"level\":"
)


class Pane(Tmux):
    """The e2e test's tmux server, plus resizing and waiting for what the pane shows."""

    def tmux(self, *args: str) -> str:
        return self.run(*args)

    def text(self) -> str:
        return self.screen()

    def resize(self, width: int, height: int) -> None:
        self.run("resize-window", "-t", "mon", "-x", str(width), "-y", str(height))

    def history(self) -> str:
        """The pane with its scrollback: what the program printed after its screen closed."""
        return self.run("capture-pane", "-p", "-S", "-200", "-t", "mon")

    def wait(self, predicate, timeout_s: float, read=None) -> str:
        found: list[str] = []

        def check() -> bool:
            found.append((read or self.text)())
            return predicate(found[-1])

        wait_for(check, timeout_s, 0.3)
        return found[-1]


@pytest.fixture
def pane(request: pytest.FixtureRequest) -> Pane:
    """On the e2e test's ``tmux`` fixture (a server of its own, killed afterwards)."""
    return Pane(request.getfixturevalue("tmux").sock)


def write_config(tmp: Path, flash: Path, ckpt: Path, hook_url: str, metrics_port: int) -> Path:
    """The end-to-end test's monitor, with camera 'lobby' at an RTSP port nobody serves (every
    attempt is refused and logged), a short cooldown (several events) and /metrics on."""
    refused = f"rtsp://viewer:hunter2@127.0.0.1:{free_port()}/stream"
    faster = {
        "defaults": {"alerts": {"cooldown_s": 2}, "backoff_max_s": 1},
        "dashboard": {"refresh_hz": 4},
        "metrics": {"prometheus_port": metrics_port},
    }
    return monitor_config(tmp, refused, flash, ckpt, hook_url, "unused", faster)


def scrape(port: int) -> dict[str, dict[tuple, float]]:
    out: dict[str, dict[tuple, float]] = {}
    text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out.setdefault(s.name, {})[tuple(sorted(s.labels.items()))] = s.value
    return out


def no_stray_lines(text: str, width: int) -> None:
    lines = [line for line in text.splitlines() if line.strip()]
    assert lines, text
    assert lines[0].startswith("vadmon "), f"first line is not the header:\n{text}"
    assert max(cell_len(line) for line in lines) <= width, text
    strays = [line for line in lines if LOG_LINE.search(line)]
    assert not strays, f"log lines on the live view: {strays}\n{text}"
    assert "hunter2" not in text


def blocks(text: str) -> int:
    """Scores shown in camera door's sparkline (one block per scored snippet)."""
    lines = [line for line in text.splitlines() if "door" in line and "online" in line]
    return len(re.findall("[▁▂▃▄▅▆▇█]", lines[0])) if lines else 0


def row(text: str, *needles: str) -> str:
    for line in text.splitlines():
        if all(n in line for n in needles):
            return line
    raise AssertionError(f"no line with {needles} in:\n{text}")


def test_live_view_sizes_logs_metrics_and_stop_summary(
    tmp_path: Path, pane: Pane, vtest_path: Path, demo_checkpoint: Path, subprocess_env
) -> None:
    flash = write_flash_video(tmp_path / "door.avi", vtest_path, frames=200, flash=(60, 100))
    secret = generate_secret()
    port = free_port()
    with Receiver([secret]) as hook:
        cfg = write_config(tmp_path, flash, demo_checkpoint, hook.url, port)
        stderr = tmp_path / "stderr.txt"
        env = f"PYTHONPATH='{subprocess_env['PYTHONPATH']}' HOOK_SECRET='{secret}'"
        cmd = f"cd {REPO} && env {env} {sys.executable} -m vadmon run --config {cfg} 2>{stderr}"
        pane.tmux("new-session", "-d", "-s", "mon", "-x", "100", "-y", "30", cmd)
        pane.tmux("set-option", "-t", "mon", "remain-on-exit", "on")
        logs = tmp_path / "data" / "logs"

        # 100x30 while the refused camera's capture process keeps logging
        text = pane.wait(lambda t: re.search(r"door +online", t) and "refused" in t, 180)
        detail = f"{text}\nstderr: {stderr.read_text() if stderr.exists() else ''}"
        assert "online" in row(text, "door"), detail
        gate = row(text, "lobby")
        assert re.search(r"(offline|connecting).*refused", gate), detail
        assert "data/logs" in row(text, "Ctrl-C", "logs"), detail  # cut from the left if long
        no_stray_lines(text, 100)
        assert wait_for(lambda: len(hook.verified()) >= 2, 240), pane.text()
        gate_log = (logs / "capture-lobby.log").read_text()
        assert gate_log.count("refused") >= 2, gate_log[-2000:]  # it logged while we watched
        assert "hunter2" not in gate_log
        assert "camera state online" in (logs / "capture-door.log").read_text()
        assert "event start" in (logs / "alerts.log").read_text()
        text = pane.text()
        no_stray_lines(text, 100)
        assert "none configured" not in text

        # 160x50: a longer sparkline (once there are more scores than 100 columns can show)
        full = pane.wait(lambda t: blocks(t) >= 20, 180)
        narrow_spark = blocks(full)
        if narrow_spark < 20:
            metrics = {k: v for k, v in scrape(port).items() if "snippets" in k}
            shutil.copytree(logs, "/tmp/ov/lastlogs", dirs_exist_ok=True)
            raise AssertionError(f"door's sparkline did not fill:\n{full}\n{metrics}")
        pane.resize(160, 50)
        wide = pane.wait(lambda t: blocks(t) > narrow_spark, 120)
        no_stray_lines(wide, 160)
        size = pane.tmux("display", "-p", "-t", "mon", "#{window_width}x#{window_height}")
        assert blocks(wide) > narrow_spark, f"{narrow_spark} blocks at 100 cols; {size}:\n{wide}"

        # 60x15: one clear line instead of a broken layout
        pane.resize(60, 15)
        small = pane.wait(lambda t: "terminal too small" in t, 20)
        assert f"need {MIN_WIDTH}x{MIN_HEIGHT}" in small, small
        assert not [line for line in small.splitlines() if LOG_LINE.search(line)], small
        pane.resize(100, 30)

        # Prometheus: one alert-latency observation per delivered webhook
        def settled() -> bool:
            m = scrape(port)
            delivered = m.get("vadmon_webhook_deliveries_total", {}).get((("status", "delivered"),))
            count = m.get("vadmon_alert_latency_seconds_count", {}).get(())
            ok = len([r for r in hook.requests if r.verified])
            return bool(count) and count == delivered == ok

        assert wait_for(settled, 30, 0.5), (scrape(port), len(hook.requests))
        m = scrape(port)
        count = m["vadmon_alert_latency_seconds_count"][()]
        print(
            f"alert latency: {count:.0f} observations for {len(hook.verified())} deliveries, "
            f"mean {m['vadmon_alert_latency_seconds_sum'][()] / count:.3f} s"
        )
        scored = sum(m["vadmon_scored_snippets_total"].values())
        inf_count = m["vadmon_inference_latency_seconds_count"][()]
        assert inf_count == scored and scored > 0, (inf_count, scored)
        assert "vadmon_dropped_snippets_total" in m and "vadmon_dropped_frames_total" not in m

        # Ctrl-C: a stop summary on the terminal
        pane.tmux("send-keys", "-t", "mon", "C-c")
        done = pane.wait(lambda t: "vadmon stopped" in t and "logs:" in t, 60, pane.history)
    assert re.search(r"vadmon stopped: 4/4 processes stopped", done), done
    assert re.search(r"events: \d+; webhooks: delivered \d+", done), done
    assert f"data: {tmp_path / 'data'}" in done.replace("\n", ""), done
    assert "Traceback" not in stderr.read_text()
