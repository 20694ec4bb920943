"""Small monitor configs for tests that run or build one process.

A process takes its settings only from a config file (the schema is the single source of
defaults), so a test that wants a capture with fast reconnects, or an alerts process with a
low threshold, writes that into a config: the same path a real ``vadmon run`` takes.
"""

from __future__ import annotations

import dataclasses
import textwrap
import uuid
from collections.abc import Callable
from pathlib import Path, PurePath
from typing import Any

import yaml

from vadmon import settings
from vadmon.alerts.clip_writer import ClipSettings
from vadmon.alerts.delivery import DeliverySettings, Endpoint, RetryPolicy
from vadmon.alerts.event import EventSettings
from vadmon.capture.snippet import SnippetSettings
from vadmon.capture.watchdog import WatchdogSettings
from vadmon.config import AlertsConfig, MonitorConfig, WebhookConfig, deep_merge, load_config_text
from vadmon.config.webhook import EVENT_TYPES

# Capture and alerts processes never load the model; the schema still wants one named.
UNUSED_MODEL = {"mode": "vadclip", "checkpoint": "/nonexistent/unused-by-this-process.pt"}


def config_dict(directory: Path, **overrides: Any) -> dict[str, Any]:
    """A valid config as a dict: ipc sockets and storage under ``directory`` (keep it short:
    ipc paths must stay under ~100 bytes), a unique instance, one synthetic camera ``cam``
    unless ``cameras`` is given; ``overrides`` deep-merge into it (``defaults={...}``)."""
    base: dict[str, Any] = {
        "instance": f"t{uuid.uuid4().hex[:10]}",
        "cameras": overrides.pop("cameras", None) or {"cam": {"source": "synthetic:w=160&h=120"}},
        "model": UNUSED_MODEL,
        "storage": {"dir": str(directory / "data")},
        "transport": {"ipc_dir": str(directory / "ipc")},
    }
    return deep_merge(base, overrides)


class _Dumper(yaml.SafeDumper):
    """Paths written as the strings the schema reads."""


_Dumper.add_multi_representer(PurePath, lambda dumper, p: dumper.represent_str(str(p)))


def write_config_file(path: Path, config: dict[str, Any]) -> Path:
    """The one way a test writes a monitor config: ``config`` (built as data by whichever
    helper) as block YAML at ``path`` (its folder made), keys in the order given; returns
    ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.dump(config, Dumper=_Dumper, sort_keys=False))
    return path


def rewrite_config(path: Path, change: Callable[[dict[str, Any]], None]) -> Path:
    """Change a written config as data (never by editing its text) and write it again."""
    config = yaml.safe_load(path.read_text())
    change(config)
    return write_config_file(path, config)


def yaml_part(text: str) -> dict[str, Any]:
    """A helper's YAML fragment (indented as it would sit in the file, or a flow mapping) as
    the mapping to deep-merge into its config; empty text: nothing."""
    return yaml.safe_load(textwrap.dedent(text)) or {}


def write_config(directory: Path, name: str = "config.yaml", **overrides: Any) -> Path:
    """``config_dict`` written to ``directory/name``; returns the path."""
    return write_config_file(directory / name, config_dict(directory, **overrides))


def monitor_config(directory: Path = Path("/nonexistent"), **overrides: Any) -> MonitorConfig:
    """The validated config ``write_config`` would write, loaded the way processes load it
    (nothing written: for tests that only need settings built from it)."""
    text = yaml.dump(config_dict(directory, **overrides), Dumper=_Dumper)
    return load_config_text(text, "<test config>", env={})


# Settings the composition root builds from the schema's defaults, then a test's overrides:
# unit tests get exactly the values a real monitor runs with, changed only where they say so.


def event_settings(**overrides: Any) -> EventSettings:
    return dataclasses.replace(settings.event_settings(AlertsConfig()), **overrides)


def clip_settings(out_dir: Path, **overrides: Any) -> ClipSettings:
    return dataclasses.replace(
        settings.clip_settings(monitor_config()), out_dir=out_dir, **overrides
    )


def delivery_settings(endpoints: tuple[Endpoint, ...], **overrides: Any) -> DeliverySettings:
    built = settings.delivery_settings(monitor_config())
    return dataclasses.replace(built, endpoints=endpoints, **overrides)


def endpoint(
    name: str,
    url: str,
    secret: str,
    allow_private: bool | tuple[str, ...] = True,
    events: tuple[str, ...] = EVENT_TYPES,
    **retry: Any,
) -> Endpoint:
    """An endpoint with the schema's retry policy (``retry`` overrides its fields)."""
    field = WebhookConfig.model_fields
    policy = RetryPolicy(
        max_attempts=field["max_attempts"].default,
        backoff_initial_s=field["backoff_initial_s"].default,
        backoff_max_s=field["backoff_max_s"].default,
        timeout_s=field["timeout_s"].default,
        network_retry_s=field["network_retry_s"].default,
    )
    policy = dataclasses.replace(policy, **retry)
    return Endpoint(name, url, (secret,), allow_private, events=tuple(events), retry=policy)


def snippet_settings(**overrides: Any) -> SnippetSettings:
    return dataclasses.replace(
        settings.capture_settings(monitor_config(), "cam").snippet, **overrides
    )


def watchdog_settings(**overrides: Any) -> WatchdogSettings:
    built = settings.capture_settings(monitor_config(), "cam").watchdog
    return dataclasses.replace(built, **overrides)
