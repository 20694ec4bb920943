"""The monitor: config → one capture process per camera, one inference, one alerts process.

This module is the only place that maps the user's config onto each process's own settings
dataclasses, and onto the supervisor's child specs. Children receive the config *path* (never a
URL on the command line, where credentials would be visible in ``ps``) plus their role.
"""

from __future__ import annotations

import os
import secrets
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from vadmon.alerts.clip_writer import ClipSettings
from vadmon.alerts.delivery import DeliverySettings, Endpoint, check_url
from vadmon.alerts.event import EventSettings
from vadmon.alerts.narrate import NarrateSettings
from vadmon.alerts.process import AlertSettings, ScoreLogSettings
from vadmon.capture.process import CaptureEndpoints, CaptureSettings, capture_endpoints
from vadmon.capture.snippet import SnippetSettings
from vadmon.capture.watchdog import WatchdogSettings
from vadmon.config import MonitorConfig
from vadmon.errors import VadmonError
from vadmon.runtime.cleanup import Cleanup
from vadmon.runtime.instance_lock import acquire_instance_lock
from vadmon.runtime.link import LinkClient, LinkServer
from vadmon.runtime.security import PUBLIC_SUFFIX, load_allowed_clients, load_public_key
from vadmon.runtime.supervisor import ChildSpec
from vadmon.runtime.transport import ipc_endpoint, ipc_path, make_ipc_dir

if TYPE_CHECKING:
    from vadmon.inference.process import InferenceSettings


def endpoints_dir(cfg: MonitorConfig) -> Path:
    return cfg.ipc_dir()


ROLES = ("all", "capture", "inference")


def link_client(cfg: MonitorConfig) -> LinkClient | None:
    """Capture side of a tcp link (``transport.tcp.connect``), or None for shared memory."""
    tcp, curve = cfg.transport.tcp, cfg.transport.curve
    if tcp is None or tcp.connect is None or curve is None:
        return None
    need(curve.client_secret_file, "transport.curve.client_secret_file")
    need(curve.server_public_file, "transport.curve.server_public_file")
    return LinkClient(tcp.connect, curve.client_secret_file, curve.server_public_file)


def link_server(cfg: MonitorConfig) -> LinkServer | None:
    """Inference side of a tcp link (``transport.tcp.bind``), or None for shared memory."""
    tcp, curve = cfg.transport.tcp, cfg.transport.curve
    if tcp is None or tcp.bind is None or curve is None:
        return None
    need(curve.server_secret_file, "transport.curve.server_secret_file")
    need(curve.allowed_clients_dir, "transport.curve.allowed_clients_dir")
    return LinkServer(
        tcp.bind,
        curve.server_secret_file,
        curve.allowed_clients_dir,
        client_cameras(cfg, curve.allowed_clients_dir, curve.client_cameras),
        tcp.max_clock_skew_s,
    )


def client_cameras(
    cfg: MonitorConfig, allowed_dir: Path, binding: dict[str, list[str]] | None
) -> dict[str, frozenset[str]]:
    """Client public key (z85) → the cameras it may send snippets for.

    Without ``transport.curve.client_cameras`` every allowed key gets every configured camera;
    either way a camera this config does not have is never accepted."""
    configured = frozenset(cfg.enabled_cameras())
    if binding is None:
        return {key.decode(): configured for key in load_allowed_clients(allowed_dir)}
    out: dict[str, frozenset[str]] = {}
    for name, cams in binding.items():
        where = f"transport.curve.client_cameras.{name}"
        unknown = sorted(set(cams) - configured)
        if unknown:
            raise VadmonError(f"camera {unknown[0]!r} is not an enabled camera", where)
        key_file = allowed_dir / f"{name}{PUBLIC_SUFFIX}"
        if not key_file.is_file():
            raise VadmonError(
                f"no key file {key_file.name} in allowed_clients_dir", where, "copy it there"
            )
        out[load_public_key(key_file).decode()] = frozenset(cams)
    return out


def need(value: object, key: str) -> None:
    if value is None:
        raise VadmonError(f"{key} is not set", "config", "tcp links need CURVE keys (vadmon keys)")


def check_role(cfg: MonitorConfig, role: str) -> None:
    """A split monitor needs the tcp side its role uses; one clear error otherwise."""
    if role not in ROLES:
        raise VadmonError(f"unknown role {role!r}", "--role", f"use one of {', '.join(ROLES)}")
    tcp = cfg.transport.tcp
    if role == "capture" and (tcp is None or tcp.connect is None):
        raise VadmonError("--role capture needs transport.tcp.connect", "config")
    if role == "inference" and (tcp is None or tcp.bind is None):
        raise VadmonError("--role inference needs transport.tcp.bind", "config")
    if role == "all" and tcp is not None and (tcp.bind is None) != (tcp.connect is None):
        raise VadmonError(
            "one host over tcp needs both transport.tcp.bind and transport.tcp.connect",
            "config",
            "or start the roles separately (--role capture / --role inference)",
        )
    if role != "inference":
        link_client(cfg)
    if role != "capture":
        link_server(cfg)


def implied_role(cfg: MonitorConfig) -> str:
    """The role a config is written for: a tcp side alone means one half of a split monitor."""
    tcp = cfg.transport.tcp
    if tcp is None or (tcp.bind is None) == (tcp.connect is None):
        return "all"
    return "inference" if tcp.bind is not None else "capture"


def preflight(cfg: MonitorConfig, role: str) -> None:
    """Every check the processes would make at run time, made before anything starts.

    ``vadmon config check`` and ``vadmon run`` both call this, so a config that passes the
    check cannot then fail in a child with a config error (exit 2) after the others started.
    """
    from vadmon.capture.source import open_source  # builds the source object, opens nothing

    check_role(cfg, role)
    if role != "inference":
        for name, cam in cfg.enabled_cameras().items():
            try:
                open_source(str(cam.source), loop=cam.loop)
            except ValueError as exc:
                raise VadmonError(
                    str(exc), f"cameras.{name}.source", "give a stream URL, file path or webcam"
                ) from None
    socket_paths(cfg, role)  # ipc socket paths that would not fit in sun_path


def camera_endpoints(cfg: MonitorConfig, camera: str) -> CaptureEndpoints:
    local = capture_endpoints(endpoints_dir(cfg), camera)
    link = link_client(cfg)
    if link is None:
        return local
    return CaptureEndpoints(publish=local.publish, snippets=link.connect, link=link)


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
    from vadmon.inference.process import (
        InferenceSettings,  # torch: only the inference process loads it
    )

    cams = list(cfg.enabled_cameras())
    return InferenceSettings(
        snippet_endpoints=[camera_endpoints(cfg, c).snippets for c in cams],
        score_endpoint=score_endpoint(cfg),
        batch_max=cfg.model.batch_max,
        batch_wait_ms=cfg.model.batch_wait_ms,
        hwm=cfg.transport.hwm,
        link=link_server(cfg),
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
        narrate=narrate_settings(cfg),
        score_log=score_log_settings(cfg),
    )


def score_log_settings(cfg: MonitorConfig) -> ScoreLogSettings | None:
    log = cfg.score_log
    return ScoreLogSettings(score_log_dir(cfg), log.keep_hours) if log.enabled else None


def score_log_dir(cfg: MonitorConfig) -> Path:
    return cfg.storage.dir / "scores"


def narrate_settings(cfg: MonitorConfig) -> NarrateSettings | None:
    n = cfg.explain.narrate
    if n.url is None:
        return None
    if not n.allow_private:
        check_url(n.url, allow_private=False)
    return NarrateSettings(
        url=n.url,
        model=n.model,
        api_key=n.api_key.get_secret_value() if n.api_key else "",
        timeout_s=n.timeout_s,
        concurrency=n.concurrency,
        max_per_hour=n.max_per_hour,
        keyframes=n.keyframes,
        max_tokens=n.max_tokens,
    )


def child_specs(cfg: MonitorConfig, config_path: Path, role: str = "all") -> list[ChildSpec]:
    """The processes of one monitor: capture per enabled camera, inference, alerts.

    ``role`` splits a monitor across hosts: ``capture`` runs only the cameras (their snippets
    go to ``transport.tcp.connect``), ``inference`` runs inference + alerts (bound on
    ``transport.tcp.bind``)."""
    py = sys.executable
    conf = str(Path(config_path).resolve())
    env = dict(os.environ)
    specs: list[ChildSpec] = []
    if role == "inference":
        return specs + _backend_specs(py, conf, env)
    specs += [
        ChildSpec(
            name=f"capture:{name}",
            argv=[py, "-m", "vadmon.capture", "--config", conf, "--camera", name],
            env=env,
            heartbeat=True,
            essential=False,  # a camera with bad input stays down; the others keep running
        )
        for name in cfg.enabled_cameras()
    ]
    return specs if role == "capture" else specs + _backend_specs(py, conf, env)


def _backend_specs(py: str, conf: str, env: dict[str, str]) -> list[ChildSpec]:
    return [
        ChildSpec(
            "inference",
            [py, "-m", "vadmon.inference", "--config", conf],
            env,
            heartbeat=True,
        ),
        ChildSpec("alerts", [py, "-m", "vadmon.alerts", "--config", conf], env, heartbeat=True),
    ]


def socket_paths(cfg: MonitorConfig, role: str) -> list[Path]:
    """Every ipc socket file this monitor's processes bind (the cleanup's targets)."""
    endpoints = [heartbeat_endpoint(cfg)]
    if role != "inference":
        for camera in cfg.enabled_cameras():
            local = capture_endpoints(endpoints_dir(cfg), camera)
            endpoints += [local.publish, local.snippets]
    if role != "capture":
        endpoints.append(score_endpoint(cfg))
    return [path for ep in endpoints if (path := ipc_path(ep)) is not None]


def claim_instance(cfg: MonitorConfig, config_name: str, role: str) -> Cleanup:
    """Lock the instance, then make what it needs; returns exactly what to remove at exit.

    The lock comes first so that a refused second monitor has created (and removes) nothing.
    Shared-memory segments get a per-run prefix: cleanup by prefix then touches only segments
    this run's children made, never another instance's or a newer run's.
    """
    lock_fd = acquire_instance_lock(cfg.lock_path(), cfg.instance, config_name)
    try:
        check_storage(cfg.storage.dir)
        directory, created = make_ipc_dir(endpoints_dir(cfg))
    except BaseException:
        os.close(lock_fd)
        raise
    run_prefix = f"{cfg.shm_prefix()}{secrets.token_hex(4)}."
    os.environ["VADMON_SHM_PREFIX"] = run_prefix
    paths = socket_paths(cfg, role) + ([directory] if created else [])
    return Cleanup(paths, [run_prefix], lock_fd=lock_fd, lock_path=cfg.lock_path())


def check_storage(directory: Path) -> None:
    """``storage.dir`` must exist and take writes: one clear line instead of a traceback later."""
    try:
        directory.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=directory, prefix=".vadmon-write-test-"):
            pass
    except OSError as exc:
        raise VadmonError(
            f"storage directory is not writable ({exc.strerror or exc})",
            f"storage.dir = {directory}",
            "make it writable or point storage.dir elsewhere",
        ) from None


def run_monitor(
    config_path: Path,
    *,
    dashboard: bool | None = None,
    systemd: bool = False,
    banner: str = "",
    duration_s: float | None = None,
    role: str = "all",
) -> int:
    """Start and supervise every process until SIGTERM/SIGINT (or ``duration_s``)."""
    import threading

    from vadmon.config import load_config
    from vadmon.dashboard.console import MonitorConsole
    from vadmon.runtime.supervisor import Supervisor

    cfg = load_config(config_path)
    preflight(cfg, role)
    cleanup = claim_instance(cfg, str(config_path), role)
    specs = child_specs(cfg, config_path, role)
    sup = Supervisor(
        specs,
        cfg.supervisor,
        heartbeat_endpoint=heartbeat_endpoint(cfg),
        cleanup=cleanup,
        systemd=systemd,
    )
    console = MonitorConsole(cfg, sup, dashboard=dashboard, banner=banner)
    if duration_s:
        timer = threading.Timer(duration_s, lambda: sup.request_stop("duration reached"))
        timer.daemon = True  # an earlier SIGTERM must not leave the process waiting for it
        timer.start()
    return console.run()
