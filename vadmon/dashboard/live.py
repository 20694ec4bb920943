"""The monitor's terminal dashboard: a rich ``Live`` view over ``DashboardState``.

The supervisor (or ``python -m vadmon.dashboard --listen``) feeds heartbeats, child status and
outbox counts in; a rich refresh thread redraws from an immutable snapshot, so feeding never
waits for drawing. Off a terminal (systemd, CI logs) it stays silent unless forced: cursor
movement codes in a log file are noise.

Run ``python -m vadmon.dashboard --help`` for the standalone viewer and the synthetic feed.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from rich.console import Console, RenderableType
from rich.live import Live

from vadmon.config import DashboardConfig
from vadmon.dashboard.render import render, sparkline
from vadmon.dashboard.state import DashboardState, StateView
from vadmon.runtime.heartbeat import Heartbeat

DEMO_BANNER = "PIPELINE DEMO — random tiny CLIP, scores mean nothing"

__all__ = [
    "DEMO_BANNER",
    "Dashboard",
    "DashboardState",
    "StateView",
    "render",
    "sparkline",
]


class Dashboard:
    """Live terminal view. ``start()`` returns False (and nothing is drawn) when disabled."""

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

    # --- feeding ---------------------------------------------------------------------------

    def update_heartbeat(self, hb: Heartbeat | Mapping[str, Any], now: float | None = None) -> None:
        self.state.update_heartbeat(hb, now)

    def update_children(self, status: Mapping[str, Any]) -> None:
        self.state.update_children(status)

    def update_outbox(
        self, counts: Mapping[str, Any], recent_events: Iterable[Mapping[str, Any]] = ()
    ) -> None:
        self.state.update_outbox(counts, recent_events)

    # --- drawing ---------------------------------------------------------------------------

    def renderable(self) -> RenderableType:
        """The view for the current terminal size, one line short so the cursor line never
        scrolls the screen."""
        width, height = self.console.size
        return render(self.state, width, max(height - 1, 4), threshold=self.threshold)

    def start(self) -> bool:
        if not self.enabled:
            return False
        if self._live is None:
            self._live = Live(
                get_renderable=self.renderable,
                console=self.console,
                screen=False,
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
