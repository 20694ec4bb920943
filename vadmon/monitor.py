"""The monitor: config → one capture process per camera, one inference, one alerts process.

This module maps the user's config onto the supervisor's child specs; ``vadmon.settings`` maps
it onto each process's own settings dataclasses (each process's entry module asks it). Children
receive the config *path* (never a URL on the command line, where credentials would be visible
in ``ps``) plus their role.
"""

from __future__ import annotations

import os
import secrets
import sys
import tempfile
from pathlib import Path

from vadmon.alerts.outbox_check import check_outbox
from vadmon.atomic import make_dirs
from vadmon.capture.setup import capture_endpoints
from vadmon.config import MonitorConfig
from vadmon.errors import VadmonError
from vadmon.runtime.child import ChildSpec
from vadmon.runtime.cleanup import Cleanup
from vadmon.runtime.instance_lock import acquire_instance_lock, release_instance_lock
from vadmon.runtime.leftovers import clear_leftovers
from vadmon.runtime.storage_lock import acquire_storage_lock
from vadmon.runtime.transport import ipc_path, make_ipc_dir, refuse_non_socket
from vadmon.settings import (
    endpoints_dir,
    heartbeat_endpoint,
    link_client,
    link_server,
    score_endpoint,
)

ROLES = ("all", "capture", "inference")


def check_role(cfg: MonitorConfig, role: str) -> None:
    """A split monitor needs the tcp side its role uses; one clear error otherwise."""
    if role not in ROLES:
        raise VadmonError(f"unknown role {role!r}", "--role", f"use one of {', '.join(ROLES)}")
    if role != "capture" and cfg.model is None:
        raise VadmonError(
            "missing required key 'model'",
            "config",
            "a host that runs inference needs the model section; only --role capture may "
            "leave it out",
        )
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


def claim_instance(
    cfg: MonitorConfig, config_name: str, role: str, move_corrupt_outbox: bool = False
) -> Cleanup:
    """Lock the instance, then make what it needs; returns exactly what to remove at exit.

    The lock comes first so that a refused second monitor has created (and removes) nothing.
    Shared-memory segments get a per-run prefix: cleanup by prefix then touches only segments
    this run's children made, never another instance's or a newer run's.
    """
    lock_fd = acquire_instance_lock(cfg.lock_path(), cfg.instance, config_name)
    storage_fd: int | None = None
    try:
        check_storage(cfg.storage.dir)
        if role != "capture":  # the alerts' outbox and media: one monitor per storage.dir
            storage_fd = acquire_storage_lock(cfg.storage.dir)
            check_outbox(cfg.storage.outbox_db, move_aside=move_corrupt_outbox)
        directory, created = make_ipc_dir(endpoints_dir(cfg))
        for path in socket_paths(cfg, role):
            refuse_non_socket(path)  # a user's file at a socket path: one line, left as it is
        clear_leftovers(socket_paths(cfg, role), cfg.shm_prefix())  # the lock proves them dead
        created = created or cfg.transport.ipc_dir is None  # the default folder is vadmon's
    except BaseException:
        if storage_fd is not None:
            os.close(storage_fd)
        release_instance_lock(lock_fd, cfg.lock_path())
        raise
    run_prefix = f"{cfg.shm_prefix()}{secrets.token_hex(4)}."
    os.environ["VADMON_SHM_PREFIX"] = run_prefix
    paths = socket_paths(cfg, role) + ([directory] if created else [])
    cleanup = Cleanup(paths, [run_prefix], lock_fd=lock_fd, lock_path=cfg.lock_path())
    if storage_fd is not None:  # held for the monitor's life; closed last in an orderly stop
        cleanup.hooks.append(lambda: os.close(storage_fd))
    return cleanup


def check_storage(directory: Path) -> None:
    """``storage.dir`` must exist and take writes: one clear line instead of a traceback later."""
    try:
        make_dirs(directory, private=True)  # event data: 0700 when we create it
        with tempfile.NamedTemporaryFile(dir=directory, prefix=".vadmon-write-test-"):
            pass
    except OSError as exc:
        raise VadmonError(
            f"storage directory is not writable ({exc.strerror or exc})",
            f"storage.dir = {directory}",
            "make it writable or point storage.dir elsewhere",
        ) from None


def child_specs(cfg: MonitorConfig, config_path: Path, role: str = "all") -> list[ChildSpec]:
    """The processes of one monitor: capture per enabled camera, inference, alerts.

    ``role`` splits a monitor across hosts: ``capture`` runs only the cameras (their snippets
    go to ``transport.tcp.connect``), ``inference`` runs inference + alerts (bound on
    ``transport.tcp.bind``)."""
    py = sys.executable
    conf = str(Path(config_path).resolve())
    env = dict(os.environ)
    specs: list[ChildSpec] = []
    if role == "inference":  # split host: the inference/alerts host serves the web too
        return specs + _backend_specs(py, conf, env) + _web_specs(cfg, py, conf, env)
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
    if role == "capture":
        return specs
    return specs + _backend_specs(py, conf, env) + _web_specs(cfg, py, conf, env)


def _web_specs(cfg: MonitorConfig, py: str, conf: str, env: dict[str, str]) -> list[ChildSpec]:
    """The web process, when ``web.enabled``: not essential (alerting never waits on it)."""
    if not cfg.web.enabled:
        return []
    argv = [py, "-m", "vadmon.web", "--config", conf]
    return [ChildSpec("web", argv, env, heartbeat=True, essential=False)]


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


def wants_dashboard(cfg: MonitorConfig, flag: bool | None) -> bool:
    """``--dashboard``/``--no-dashboard`` win; else ``dashboard.enabled`` (auto = on a tty)."""
    if flag is not None:
        return flag
    setting = cfg.dashboard.enabled
    return sys.stdout.isatty() if setting == "auto" else bool(setting)


def run_monitor(
    config_path: Path,
    *,
    dashboard: bool | None = None,
    systemd: bool = False,
    banner: str = "",
    duration_s: float | None = None,
    role: str = "all",
    move_corrupt_outbox: bool = False,
) -> int:
    """Start and supervise every process until SIGTERM/SIGINT (or ``duration_s``).

    With the live view on, every process logs to ``<storage.dir>/logs/`` instead of the
    terminal; otherwise (service mode) everything logs to stderr, in ``VADMON_LOG_FORMAT``."""
    import threading

    from vadmon.config import load_config
    from vadmon.dashboard.console import MonitorConsole
    from vadmon.runtime.logs import setup_logging
    from vadmon.runtime.supervisor import Supervisor

    cfg = load_config(config_path)
    preflight(cfg, role)
    cleanup = claim_instance(cfg, str(config_path), role, move_corrupt_outbox)
    if cfg.web.enabled and role != "capture":
        print(f"vadmon: review page and API at {cfg.web.base_url()}/", file=sys.stderr)
    specs = child_specs(cfg, config_path, role)
    live = wants_dashboard(cfg, dashboard)
    log_dir = cfg.storage.dir / "logs" if live else None
    if log_dir is not None:
        setup_logging("supervisor", file=log_dir / "supervisor.log")
    sup = Supervisor(
        specs,
        cfg.supervisor,
        heartbeat_endpoint=heartbeat_endpoint(cfg),
        cleanup=cleanup,
        systemd=systemd,
        log_dir=log_dir,
    )
    console = MonitorConsole(cfg, sup, dashboard=live, banner=banner, log_dir=log_dir)
    if duration_s:
        timer = threading.Timer(duration_s, lambda: sup.request_stop("duration reached"))
        timer.daemon = True  # an earlier SIGTERM must not leave the process waiting for it
        timer.start()
    return console.run()
