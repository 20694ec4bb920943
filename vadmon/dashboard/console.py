"""What the operator sees while the monitor runs: the rich dashboard on a terminal, or one
status line per camera every few seconds in the log (services, ``--no-dashboard``).

Both read the same numbers: the heartbeats the supervisor receives from every process.
"""

from __future__ import annotations

import logging
import sys
import time
from typing import Any

from vadmon.config import MonitorConfig
from vadmon.runtime.heartbeat import Heartbeat
from vadmon.runtime.supervisor import Supervisor

log = logging.getLogger("vadmon.monitor")


class MonitorConsole:
    def __init__(
        self,
        cfg: MonitorConfig,
        supervisor: Supervisor,
        *,
        dashboard: bool | None = None,
        banner: str = "",
        log_every_s: float = 10.0,
    ) -> None:
        self.cfg = cfg
        self.sup = supervisor
        self.banner = banner
        self.beats: dict[str, dict[str, Any]] = {}
        self._metrics_state = None
        self.log_every_s = log_every_s
        self._next_log = time.monotonic() + 3.0
        if dashboard is None:
            setting = cfg.dashboard.enabled
            dashboard = sys.stdout.isatty() if setting == "auto" else bool(setting)
        self.dashboard = self._make_dashboard() if dashboard else None
        supervisor.listeners.append(self.on_heartbeat)

    def _make_dashboard(self):
        from vadmon.dashboard.live import Dashboard

        dash = Dashboard(
            self.cfg.dashboard,
            cameras=list(self.cfg.enabled_cameras()),
            banner=self.banner or None,
            force=True,
            threshold=self.cfg.defaults.alerts.threshold,
        )
        return dash

    def on_heartbeat(self, beat: Heartbeat) -> None:
        self.beats[beat.process] = beat.fields
        if self.dashboard is not None:
            self.dashboard.update_heartbeat(beat)
        elif self._metrics_state is not None:
            self._metrics_state.update_heartbeat(beat)

    def tick(self) -> None:
        if self.dashboard is not None:
            self.dashboard.update_children(self.sup.status())
            self.dashboard.refresh()
            return
        now = time.monotonic()
        if now >= self._next_log:
            self._next_log = now + self.log_every_s
            for line in self.status_lines():
                log.info("%s", line)

    def status_lines(self) -> list[str]:
        inf = self.beats.get("inference", {}).get("info", {}).get("cameras", {})
        lines = []
        for name in self.cfg.enabled_cameras():
            cap = self.beats.get(f"capture:{name}", {})
            counters = cap.get("counters", {})
            cam = inf.get(name, {})
            lines.append(
                f"camera {name}: {cap.get('state', 'starting')}, "
                f"capture {counters.get('fps', 0):.1f} fps, "
                f"inference {cam.get('fps', 0):.2f} snippets/s, "
                f"skipped {cam.get('skipped_total', 0)}, score {cam.get('score', 0):.2f} "
                f"{cam.get('label', '')}"
            )
        alerts = self.beats.get("alerts", {}).get("counters", {})
        if alerts:
            lines.append(
                "alerts: events {:.0f} (+{:.0f} in cooldown), webhooks pending {:.0f}, "
                "delivered {:.0f}, dead {:.0f}".format(
                    alerts.get("events_total", 0),
                    alerts.get("suppressed_cooldown", 0),
                    alerts.get("pending", 0),
                    alerts.get("delivered", 0),
                    alerts.get("dead", 0),
                )
            )
        return lines

    def run(self) -> int:
        if self.banner:
            log.warning("%s", self.banner)
        exporter = None
        if self.cfg.metrics.prometheus_port is not None:
            from vadmon.dashboard.prometheus import start_exporter
            from vadmon.dashboard.state import DashboardState

            state = (
                self.dashboard.state
                if self.dashboard
                else DashboardState(self.cfg.enabled_cameras())
            )
            self._metrics_state = state
            exporter = start_exporter(self.cfg.metrics, state)
        if self.dashboard is not None:
            self.dashboard.start()
        try:
            return self.sup.run(on_tick=self.tick)
        finally:
            if self.dashboard is not None:
                self.dashboard.stop()
            if exporter is not None:
                exporter.stop()
