"""What the operator sees while the monitor runs: the rich live view on a terminal, or log
lines in service mode (``--no-dashboard``, systemd).

Both read one ``DashboardState``, fed with the heartbeats the supervisor accepted (validated once
in ``vadmon.runtime.heartbeat``). Under the live view every child's output goes to rotating
files in the run directory (``Supervisor(log_dir=...)``), so nothing else writes to the terminal;
in service mode the children log to stderr themselves — one line per event and per camera state
change — and this console adds a status line per camera every minute and a stop summary.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from collections.abc import Iterable
from pathlib import Path

from rich.console import Console, RenderableType
from rich.live import Live

from vadmon.config import DashboardConfig, MonitorConfig
from vadmon.dashboard.link_view import link_suffix
from vadmon.dashboard.render import render, sparkline
from vadmon.dashboard.state import DashboardState, StateView
from vadmon.runtime.heartbeat import Heartbeat
from vadmon.runtime.supervisor import Supervisor

DEMO_BANNER = "PIPELINE DEMO — random tiny CLIP, scores mean nothing"
STATUS_EVERY_S = 60.0

__all__ = ["DEMO_BANNER", "Dashboard", "DashboardState", "MonitorConsole", "StateView", "render"]
__all__ += ["sparkline"]

log = logging.getLogger("vadmon.monitor")


class Dashboard:
    """Live terminal view. ``start()`` returns False (and nothing is drawn) when disabled.

    Feed it through ``state``; a rich refresh thread redraws from an immutable snapshot, so
    feeding never waits for drawing. Off a terminal it stays silent unless forced: cursor
    movement codes in a log file are noise."""

    def __init__(
        self,
        config: DashboardConfig | None = None,
        *,
        state: DashboardState | None = None,
        cameras: Iterable[str] = (),
        banner: str | None = None,
        console: Console | None = None,
        force: bool = False,
        threshold: float = 0.5,
    ) -> None:
        self.config = config or DashboardConfig()
        self.state = state or DashboardState(cameras=cameras, banner=banner)
        if banner is not None:
            self.state.banner = banner
        forced = force or self.config.enabled is True
        self.console = console or Console(force_terminal=True if forced else None)
        self.enabled = forced or (self.config.enabled == "auto" and self.console.is_terminal)
        self.threshold = threshold
        self._live: Live | None = None

    def renderable(self) -> RenderableType:
        """The view for the current terminal size (read on every redraw: resizes just work)."""
        width, height = self.size()
        return render(self.state, width, height, threshold=self.threshold)

    def size(self) -> tuple[int, int]:
        """The terminal's own size: rich prefers ``COLUMNS``/``LINES``, which a parent process
        may have exported once and which never follow a resize; so ask the tty, and tell rich
        (it crops what it draws to its own idea of the width)."""
        try:
            size = os.get_terminal_size(self.console.file.fileno())
        except (AttributeError, OSError, ValueError):
            return self.console.size
        self.console.size = (size.columns, size.lines)
        return size.columns, size.lines

    def start(self) -> bool:
        if not self.enabled:
            return False
        if self._live is None:
            self._live = Live(
                get_renderable=self.renderable,
                console=self.console,
                screen=True,  # alternate screen: a resize redraws cleanly, the shell stays intact
                auto_refresh=True,
                refresh_per_second=self.config.refresh_hz,
                redirect_stdout=False,
                redirect_stderr=False,
            )
            self._live.start()
        return True

    def refresh(self) -> None:
        """Redraw now (the refresh thread also redraws ``refresh_hz`` times a second)."""
        if self._live is not None:
            self._live.refresh()

    def stop(self) -> None:
        if self._live is not None:
            live, self._live = self._live, None
            live.stop()

    def __enter__(self) -> Dashboard:
        self.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop()


class MonitorConsole:
    """Feeds the supervisor's accepted heartbeats into one state, shown live or logged."""

    def __init__(
        self,
        cfg: MonitorConfig,
        supervisor: Supervisor,
        *,
        dashboard: bool,
        banner: str = "",
        log_dir: Path | None = None,
    ) -> None:
        self.cfg = cfg
        self.sup = supervisor
        self.banner = banner
        self.state = DashboardState(
            cfg.enabled_cameras(),
            banner or None,
            webhooks=len(cfg.webhooks),
            log_dir=str(log_dir) if log_dir else None,
        )
        self.dashboard = (
            Dashboard(
                cfg.dashboard,
                state=self.state,
                force=True,
                threshold=cfg.defaults.alerts.threshold,
            )
            if dashboard
            else None
        )
        self._next_log = time.monotonic() + STATUS_EVERY_S
        self.started = time.time()  # the stop summary counts this run's rows from here
        self._scored: set[str] = set()
        supervisor.listeners.append(self.on_heartbeat)
        supervisor.on_stopping.append(self.on_stopping)

    def on_stopping(self) -> None:
        """Shutdown began: say so now (the children may take a few seconds to go)."""
        reason = self.sup.stop_reason or "stop"
        self.state.update_children(self.sup.status())
        if self.dashboard is None:
            log.info("stopping… (%s)", reason)
            return
        self.state.banner = f"stopping… ({reason})"
        self.dashboard.refresh()

    def on_heartbeat(self, beat: Heartbeat) -> None:
        self.state.update_heartbeat(beat)

    def tick(self) -> None:
        self.state.update_children(self.sup.status())
        if self.dashboard is not None:
            return  # the refresh thread redraws
        self._log_first_scores()
        now = time.monotonic()
        if now >= self._next_log:
            self._next_log = now + STATUS_EVERY_S
            for line in self.status_lines():
                log.info("%s", line)

    def _log_first_scores(self) -> None:
        """Service mode: one line when a camera's first snippet is scored (the pipeline works)."""
        for cam in self.state.view().cameras:
            if cam.score is not None and cam.name not in self._scored:
                self._scored.add(cam.name)
                log.info("camera %s: first score %.2f", cam.name, cam.score)

    def status_lines(self) -> list[str]:
        """One line per camera and one for alerts, from the validated state."""
        view = self.state.view()
        lines = [
            f"camera {c.name}: {c.state}"
            + (f" ({c.reason})" if c.reason else "")
            + f", capture {_fmt(c.capture_fps, '{:.1f}')} fps"
            + f", inference {_fmt(c.inference_fps, '{:.2f}')} snippets/s"
            + f", skipped {_fmt(c.skipped_total, '{:.0f}')}, score {_fmt(c.score, '{:.2f}')}"
            + link_suffix(c)  # split host: ", link refused 12 (clock ahead)" (issue 20)
            + (f", unchanged {c.gate_reused_total:.0f}" if c.gate_reused_total is not None else "")
            for c in view.cameras
        ]
        if view.inference.encoder:
            lines.append(f"encoder: {view.inference.encoder}")
        q = view.queue
        if q.events_total is not None:
            lines.append(
                f"alerts: events {_fmt(q.events_total, '{:.0f}')} "
                f"(+{_fmt(q.suppressed_cooldown or 0, '{:.0f}')} in cooldown), webhooks pending "
                f"{_fmt(q.pending, '{:.0f}')}, delivered {_fmt(q.delivered, '{:.0f}')}, "
                f"dead {_fmt(q.dead, '{:.0f}')}"
            )
        return lines

    def stop_summary(self) -> list[str]:
        """What an operator wants after Ctrl-C: what stopped, what happened, where it is."""
        status = self.sup.status()
        stopped = [n for n, st in status.items() if st.state in ("stopped", "exited")]
        other = [
            f"{n} {st.state}" for n, st in status.items() if st.state not in ("stopped", "exited")
        ]
        storage = self.cfg.storage
        lines = [
            f"vadmon stopped: {len(stopped)}/{len(status)} processes stopped"
            + (f" ({', '.join(other)})" if other else ""),
            self._totals_line(),
            f"data: {storage.dir} (outbox {storage.outbox_db}, snapshots and clips "
            f"{storage.dir / 'media'})",
        ]
        if self.state.log_dir:
            lines.append(f"logs: {self.state.log_dir}")
        return lines

    def _totals_line(self) -> str:
        """This run's events and deliveries, from the database (what ``vadmon events`` shows)."""
        from vadmon.dashboard.summary import run_totals

        totals = run_totals(self.cfg.storage.outbox_db, self.started)
        if totals is None:
            return f"events: none recorded (no outbox database at {self.cfg.storage.outbox_db})"
        hooks = (
            "none configured"
            if not self.cfg.webhooks
            else f"delivered {totals['delivered']}, pending {totals['pending']}, "
            f"dead {totals['dead']}"
        )
        return f"events: {totals['events']}; webhooks: {hooks} (this run, from the outbox)"

    def run(self) -> int:
        if self.banner and self.dashboard is None:
            log.warning("%s", self.banner)
        exporter = None
        if self.cfg.metrics.prometheus_port is not None:
            from vadmon.dashboard.prometheus import start_exporter

            exporter = start_exporter(self.cfg.metrics, self.state)
        if self.dashboard is not None:
            self.dashboard.start()
        try:
            code = self.sup.run(on_tick=self.tick, on_stopped=self._view_off)
        finally:
            self._view_off()
            if exporter is not None:
                exporter.stop()
        self.state.update_children(self.sup.status())
        for line in self.stop_summary():
            if self.dashboard is not None:
                print(line, file=sys.stdout, flush=True)
            else:
                log.info("%s", line)
        return code

    def _view_off(self) -> None:
        if self.dashboard is not None:
            self.state.update_children(self.sup.status())
            self.dashboard.stop()


def _fmt(value: float | None, spec: str) -> str:
    return "—" if value is None else spec.format(value)
