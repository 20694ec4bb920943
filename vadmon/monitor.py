"""The monitor: config → one capture process per camera, one inference, one alerts process.

This module is the only place that maps the user's config onto each process's own settings
dataclasses, and onto the supervisor's child specs. Children receive the config *path* (never a
URL on the command line, where credentials would be visible in ``ps``) plus their role.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from vadmon.alerts import AlertSettings
from vadmon.clip_writer import ClipSettings
from vadmon.config import MonitorConfig
from vadmon.delivery import DeliverySettings, Endpoint
from vadmon.event import EventSettings
from vadmon.frame import CaptureEndpoints, CaptureSettings, capture_endpoints
from vadmon.inference import InferenceSettings
from vadmon.snippet import SnippetSettings
from vadmon.supervisor import ChildSpec
from vadmon.transport import ipc_endpoint
from vadmon.watchdog import WatchdogSettings


def endpoints_dir(cfg: MonitorConfig) -> Path:
    return cfg.ipc_dir()


def camera_endpoints(cfg: MonitorConfig, camera: str) -> CaptureEndpoints:
    return capture_endpoints(endpoints_dir(cfg), camera)


def score_endpoint(cfg: MonitorConfig) -> str:
    return ipc_endpoint(endpoints_dir(cfg), "scores")


def heartbeat_endpoint(cfg: MonitorConfig) -> str:
    return ipc_endpoint(endpoints_dir(cfg), "supervisor")


def capture_settings(cfg: MonitorConfig, camera: str) -> CaptureSettings:
    cam = cfg.cameras[camera]
    snippet = SnippetSettings(
        frames_per_snippet=cfg.model.snippet_frames,
        samples=cfg.model.frames_per_snippet,
        fps=float(cam.fps or 0.0),
    )
    watchdog = WatchdogSettings(
        stall_timeout_s=cam.stall_timeout_s,
        connect_timeout_s=max(cam.open_timeout_s * 2, cam.stall_timeout_s),
        backoff_base_s=cam.backoff_initial_s,
        backoff_max_s=cam.backoff_max_s,
        frozen_timeout_s=float(cam.frozen_timeout_s or 0.0),
    )
    return CaptureSettings(
        camera=camera,
        source=str(cam.source),
        loop=cam.loop,
        open_timeout_ms=int(cam.open_timeout_s * 1000),
        read_timeout_ms=int(cam.read_timeout_s * 1000),
        ring_slots=cam.ring_slots,
        snippet=snippet,
        watchdog=watchdog,
        preview_fps=cam.preview.fps,
        preview_width=cam.preview.max_width,
        jpeg_quality=cam.preview.jpeg_quality,
    )


def inference_settings(cfg: MonitorConfig) -> InferenceSettings:
    cams = list(cfg.enabled_cameras())
    return InferenceSettings(
        snippet_endpoints=[camera_endpoints(cfg, c).snippets for c in cams],
        score_endpoint=score_endpoint(cfg),
        batch_max=cfg.model.batch_max,
        batch_wait_ms=cfg.model.batch_wait_ms,
        hwm=cfg.transport.hwm,
    )


def event_settings(alerts) -> EventSettings:
    sm = alerts.smoothing
    return EventSettings(
        threshold=alerts.threshold,
        hysteresis=alerts.hysteresis,
        min_duration_s=alerts.min_duration_s,
        cutoff_s=alerts.cutoff_s,
        smoothing=sm.kind,
        smoothing_k=sm.window,
        cooldown_s=alerts.cooldown_s,
    )


def alert_settings(cfg: MonitorConfig) -> AlertSettings:
    endpoints = tuple(
        Endpoint(w.name, w.url, (w.secret.get_secret_value(),), w.allow_private)
        for w in cfg.webhooks
    )
    first = cfg.webhooks[0] if cfg.webhooks else None
    delivery = DeliverySettings(
        endpoints=endpoints,
        max_attempts=first.max_attempts if first else 8,
        backoff_base_s=first.backoff_initial_s if first else 2.0,
        backoff_max_s=first.backoff_max_s if first else 600.0,
        attempt_deadline_s=first.timeout_s if first else 10.0,
    )
    cams = cfg.enabled_cameras()
    pre = max((c.alerts.pre_capture_s for c in cams.values()), default=5.0)
    post = max((c.alerts.post_capture_s for c in cams.values()), default=5.0)
    return AlertSettings(
        db_path=cfg.storage.outbox_db,
        clips=ClipSettings(cfg.storage.dir / "media", pre_s=pre, post_s=post),
        events=event_settings(cfg.defaults.alerts),
        per_camera={name: event_settings(c.alerts) for name, c in cams.items()},
        delivery=delivery,
    )


def child_specs(cfg: MonitorConfig, config_path: Path) -> list[ChildSpec]:
    """The processes of one monitor: capture per enabled camera, inference, alerts."""
    py = sys.executable
    conf = str(Path(config_path).resolve())
    env = dict(os.environ)
    specs = [
        ChildSpec(
            name=f"capture:{name}",
            argv=[py, "-m", "vadmon.frame", "--config", conf, "--camera", name],
            env=env,
            heartbeat=True,
        )
        for name in cfg.enabled_cameras()
    ]
    specs.append(
        ChildSpec(
            "inference", [py, "-m", "vadmon.inference", "--config", conf], env, heartbeat=True
        )
    )
    specs.append(
        ChildSpec("alerts", [py, "-m", "vadmon.alerts", "--config", conf], env, heartbeat=True)
    )
    return specs


def run_monitor(
    config_path: Path,
    *,
    dashboard: bool | None = None,
    systemd: bool = False,
    banner: str = "",
    duration_s: float | None = None,
) -> int:
    """Start and supervise every process until SIGTERM/SIGINT (or ``duration_s``)."""
    import threading

    from vadmon.cleanup import Cleanup
    from vadmon.config import load_config
    from vadmon.console import MonitorConsole
    from vadmon.supervisor import Supervisor
    from vadmon.transport import ipc_dir

    cfg = load_config(config_path)
    ipc_dir(endpoints_dir(cfg))
    cfg.storage.dir.mkdir(parents=True, exist_ok=True)
    os.environ["VADMON_SHM_PREFIX"] = cfg.shm_prefix()
    specs = child_specs(cfg, config_path)
    sup = Supervisor(
        specs,
        cfg.supervisor,
        heartbeat_endpoint=heartbeat_endpoint(cfg),
        cleanup=Cleanup(paths=[endpoints_dir(cfg)], shm_prefixes=[cfg.shm_prefix()]),
        systemd=systemd,
    )
    console = MonitorConsole(cfg, sup, dashboard=dashboard, banner=banner)
    if duration_s:
        timer = threading.Timer(duration_s, lambda: sup.request_stop("duration reached"))
        timer.daemon = True  # an earlier SIGTERM must not leave the process waiting for it
        timer.start()
    return console.run()
