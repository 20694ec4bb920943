"""The monitor: config → one capture process per camera, one inference, one alerts process.

This module maps the user's config onto the supervisor's child specs; ``vadmon.settings`` maps
it onto each process's own settings dataclasses (each process's entry module asks it). Children
receive the config *path* (never a URL on the command line, where credentials would be visible
in ``ps``) plus their role.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from vadmon.atomic import make_dirs
from vadmon.config import MonitorConfig
from vadmon.errors import VadmonError
from vadmon.runtime.child import ChildSpec
from vadmon.settings import endpoints_dir, heartbeat_endpoint, link_client, link_server

ROLES = ("all", "capture", "inference")


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
    from vadmon.runtime.cleanup import Cleanup
    from vadmon.runtime.supervisor import Supervisor
    from vadmon.runtime.transport import ipc_dir

    cfg = load_config(config_path)
    check_role(cfg, role)
    ipc_dir(endpoints_dir(cfg))
    make_dirs(cfg.storage.dir, private=True)  # event data: 0700 when we create it
    os.environ["VADMON_SHM_PREFIX"] = cfg.shm_prefix()
    specs = child_specs(cfg, config_path, role)
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
