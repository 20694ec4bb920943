"""Prometheus /metrics for the monitor, computed from the dashboard's state at scrape time.

A custom collector rather than prometheus-client Counter/Gauge objects: the children already
report totals, so mirroring them into ``inc()`` calls would invent a second set of numbers that
could drift from the dashboard. Each exporter has its own ``CollectorRegistry`` so several can
live in one process (tests, or a viewer beside a supervisor). Child restarts reset their
``*_total`` counters; Prometheus' ``rate()`` already treats a drop as a reset.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator

from prometheus_client import CollectorRegistry, generate_latest, start_http_server
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from vadmon.config import MetricsConfig
from vadmon.dashboard.link_view import link_families, refused_counts
from vadmon.dashboard.state import CameraView, DashboardState, HistogramView, StateView
from vadmon.errors import VadmonError

CameraGetter = Callable[[CameraView], float | None]

CAMERA_GAUGES: tuple[tuple[str, str, CameraGetter], ...] = (
    ("vadmon_camera_fps", "Capture frames per second.", lambda c: c.capture_fps),
    ("vadmon_inference_fps", "Snippets scored per second.", lambda c: c.inference_fps),
    ("vadmon_anomaly_score", "Latest anomaly score (0..1).", lambda c: c.score),
    (
        "vadmon_inference_latency_last_seconds",
        "Latest scoring latency.",
        lambda c: _ms(c.latency_ms),
    ),
)
CAMERA_COUNTERS: tuple[tuple[str, str, CameraGetter], ...] = (
    ("vadmon_skipped_snippets_total", "Snippets skipped (latest wins).", lambda c: c.skipped_total),
    ("vadmon_scored_snippets_total", "Snippets scored by inference.", lambda c: c.scored_total),
    ("vadmon_reconnects_total", "Capture reconnects.", lambda c: c.reconnects_total),
    ("vadmon_stalls_total", "Times a stream was declared stalled.", lambda c: c.stalls_total),
    ("vadmon_frames_total", "Frames captured.", lambda c: c.frames_total),
    (
        "vadmon_flood_suppressed_events_total",
        "Events the flood guard (alerts.flood_max_events per flood_window_s) did not send.",
        lambda c: c.flood_suppressed_total,
    ),
    (
        "vadmon_dropped_snippets_total",
        "Snippets capture dropped because inference was not taking them.",
        lambda c: c.snippet_drops_total,
    ),
    (
        "vadmon_gate_reused_snippets_total",
        "Snippets scored with the previous embedding: their frame did not change (change_gate).",
        lambda c: c.gate_reused_total,
    ),
    (
        "vadmon_encoder_dropped_snippets_total",
        "Snippets inference dropped because the remote image tower (Triton) was down or late.",
        lambda c: c.encoder_drops_total,
    ),
)


def _ms(value: float | None) -> float | None:
    return None if value is None else value / 1000.0


class StateCollector(Collector):
    """Reads one ``StateView`` per scrape so all families describe the same instant."""

    def __init__(self, state: DashboardState) -> None:
        self.state = state

    def collect(self) -> Iterator[Metric]:
        view = self.state.view()
        yield from _camera_families(view)
        yield _histogram(
            "vadmon_inference_latency_seconds",
            "Snippet end to score published, every scored snippet (all cameras).",
            view.inference_latency,
        )
        yield _histogram(
            "vadmon_alert_latency_seconds",
            "Webhook queued to delivered (2xx), one observation per delivery.",
            view.alert_latency,
        )
        yield from _queue_families(view)
        if view.inference.encoder:
            up = GaugeMetricFamily(
                "vadmon_encoder_up", "1 while the image tower answers.", labels=["encoder"]
            )
            state = view.inference.encoder
            up.add_metric([state.split(" (")[0]], 1.0 if state.endswith(("up", "(local)")) else 0.0)
            yield up
        restarts = CounterMetricFamily(
            "vadmon_process_restarts_total", "Supervisor restarts per child.", labels=["process"]
        )
        for proc in view.processes:
            restarts.add_metric([proc.name], proc.restarts)
        yield restarts


def _camera_families(view: StateView) -> Iterator[Metric]:
    online = GaugeMetricFamily(
        "vadmon_camera_online", "1 when the camera is online.", labels=["camera"]
    )
    for cam in view.cameras:
        online.add_metric([cam.name], 1.0 if cam.state == "online" else 0.0)
    yield online
    for name, doc, getter in CAMERA_GAUGES:
        gauge = GaugeMetricFamily(name, doc, labels=["camera"])
        _add_known(gauge, view, getter)
        yield gauge
    for name, doc, getter in CAMERA_COUNTERS:
        counter = CounterMetricFamily(name, doc, labels=["camera"])
        _add_known(counter, view, getter)
        yield counter
    refused = CounterMetricFamily(
        "vadmon_link_refused_total",
        "Split host: a camera's snippets/previews the link refused (reason: refused_camera = "
        "a key speaking for a camera not its own, clock_skew = dated ahead of the inference "
        "host's clock, unknown_camera = not in its config); on a capture host as its verdict "
        "said.",
        labels=["camera", "reason"],
    )
    for cam in view.cameras:
        for reason, value in refused_counts(cam):  # capture host too: from the verdicts
            refused.add_metric([cam.name, reason], value)
    yield refused
    yield from link_families(view)


def _add_known(family: Metric, view: StateView, getter: CameraGetter) -> None:
    """Unknown values are left out rather than exported as 0, which would look like data."""
    for cam in view.cameras:
        value = getter(cam)
        if value is not None:
            family.add_metric([cam.name], value)  # type: ignore[attr-defined]


def _queue_families(view: StateView) -> Iterator[Metric]:
    q = view.queue
    deliveries = CounterMetricFamily(
        "vadmon_webhook_deliveries_total", "Webhook deliveries by outcome.", labels=["status"]
    )
    queue = GaugeMetricFamily("vadmon_webhook_queue", "Webhooks waiting.", labels=["status"])
    for status, value in (("delivered", q.delivered), ("dead", q.dead)):
        if value is not None:
            deliveries.add_metric([status], value)
    for status, value in (("pending", q.pending), ("retrying", q.retrying)):
        if value is not None:
            queue.add_metric([status], value)
    yield deliveries
    yield queue
    if q.events_total is not None:
        events = CounterMetricFamily("vadmon_events_total", "Anomaly events opened.")
        events.add_metric([], q.events_total)
        yield events


def _histogram(name: str, doc: str, h: HistogramView) -> HistogramMetricFamily:
    bounds = [repr(float(b)) for b in h.buckets] + ["+Inf"]
    return HistogramMetricFamily(
        name, doc, buckets=list(zip(bounds, h.cumulative, strict=True)), sum_value=h.total
    )


class PrometheusExporter:
    """``/metrics`` over HTTP for one ``DashboardState``; ``port`` is the bound port."""

    def __init__(self, state: DashboardState) -> None:
        self.state = state
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(StateCollector(state))
        self.port: int | None = None
        self._server = None
        self._thread: threading.Thread | None = None

    def generate(self) -> bytes:
        """The exposition text (what a scrape returns)."""
        return generate_latest(self.registry)

    def start(self, port: int, host: str = "127.0.0.1") -> int:
        """Serve on ``host:port`` (0 = any free port); returns the bound port."""
        try:
            self._server, self._thread = start_http_server(port, addr=host, registry=self.registry)
        except OSError as exc:
            raise VadmonError(
                f"cannot serve metrics on {host}:{port}: {exc.strerror or exc}",
                "metrics.prometheus_port",
                "pick a free port or set it to null",
            ) from exc
        self.port = int(self._server.server_address[1])
        return self.port

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None


def start_exporter(config: MetricsConfig, state: DashboardState) -> PrometheusExporter | None:
    """The exporter the config asks for, already serving; None when ``prometheus_port`` is off."""
    if config.prometheus_port is None:
        return None
    exporter = PrometheusExporter(state)
    exporter.start(config.prometheus_port, config.prometheus_host)
    return exporter
