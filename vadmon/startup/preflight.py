"""The one preflight ``vadmon config check`` and ``vadmon run`` both make, before any child.

Why one list for both: a config that passes the check must not then fail in a child after the
others started (the inference process used to exit 2 after 12–30 s for a missing checkpoint,
and a capture process retried a missing file forever). ``run`` prints exactly the lines the
check prints and exits 2 within a second or two.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

from vadmon.config import MonitorConfig
from vadmon.errors import VadmonError
from vadmon.startup import weights

# "rtsp//cam" or "rtsp:/cam": a URL with its colon or a slash lost reads as a relative path
_BROKEN_URL = re.compile(r"^(rtsps?|rtmp|https?)(:/(?!/)|//|/)", re.IGNORECASE)


def preflight_problems(cfg: MonitorConfig, role: str, where: str) -> list[VadmonError]:
    """Every problem a start would hit, as one-line errors (empty: the monitor may start)."""
    from vadmon.monitor import preflight

    try:
        preflight(cfg, role)
    except VadmonError as exc:
        return [exc]
    problems: list[VadmonError] = []
    if role != "inference":
        problems += source_problems(cfg, where)
    if role != "capture" and cfg.model is not None:
        problems += weights.missing(cfg.model, where)
    if role != "capture":
        problems += webhook_problems(cfg, where)
    return problems


def source_problems(cfg: MonitorConfig, where: str) -> list[VadmonError]:
    """Enabled cameras whose video file is missing (or whose URL lost its ``://``)."""
    from vadmon.capture.source import FileSource, open_source

    problems = []
    for name, camera in cfg.enabled_cameras().items():
        source = open_source(str(camera.source))  # builds, does not open
        if not isinstance(source, FileSource) or source.path.is_file():
            continue
        text = str(camera.source_redacted)
        fix = "fix the path (relative paths start at the working directory)"
        if _BROKEN_URL.match(text):
            fix = "this reads as a file path: a stream URL needs '://' (rtsp://host/path)"
        problems.append(
            VadmonError(
                f"video file not found (got '{text}')", f"{where} (cameras.{name}.source)", fix
            )
        )
    return problems


def webhook_problems(cfg: MonitorConfig, where: str) -> list[VadmonError]:
    """Refused webhook URLs; an unresolvable name is only a warning (DNS may be down now)."""
    from vadmon.alerts.webhook_url import UrlRefused, UrlUnresolved, check_url

    problems = []
    for i, hook in enumerate(cfg.webhooks):
        try:
            check_url(hook.url, hook.allow_private)
        except UrlUnresolved as exc:  # the alert process retries
            print(f"warning: {exc.what}: in {where} (webhooks[{i}].url)", file=sys.stderr)
        except UrlRefused as exc:
            problems.append(VadmonError(exc.what, f"{where} (webhooks[{i}].url)", exc.fix))
    return problems


def report(problems: list[VadmonError], where: str | Path) -> int:
    """Print each problem as ``error: …`` (the same lines for check and run); exit code 2."""
    for problem in problems:
        print(f"error: {problem.line()}", file=sys.stderr)
    if len(problems) > 1:
        print(f"{where}: {len(problems)} problems", file=sys.stderr)
    return 2
