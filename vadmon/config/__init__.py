"""The monitor configuration: one YAML file, validated by pydantic models.

The models (``vadmon.config.models`` with its ``camera``, ``webhook`` and ``explain`` sections)
are the single source of defaults and double as the documentation (``vadmon config schema`` prints them as JSON schema). Everything forbids
unknown keys, so a typo fails at start-up with the YAML line instead of being ignored.

Loading (``load_config``, in ``vadmon.config.load``) does, in order: parse YAML keeping line
numbers, substitute ``${ENV}`` placeholders, deep-merge ``defaults:`` into every
``cameras.<name>`` (camera values win), validate, and turn the first pydantic error into one
``VadmonError`` line naming file, line and YAML path. Relative paths (checkpoint, storage
dir, key files) are relative to the working directory.
"""

from __future__ import annotations

from vadmon.config.camera import (
    AlertsConfig,
    CameraConfig,
    CameraSettings,
    PreviewConfig,
    SmoothingConfig,
)
from vadmon.config.load import config_json_schema, deep_merge, load_config, load_config_text
from vadmon.config.models import (
    CurveConfig,
    DashboardConfig,
    MetricsConfig,
    ModelConfig,
    MonitorConfig,
    RetentionConfig,
    StorageConfig,
    SupervisorConfig,
    TcpConfig,
    TransportConfig,
)
from vadmon.config.webhook import WebhookConfig

__all__ = [
    "AlertsConfig",
    "CameraConfig",
    "CameraSettings",
    "CurveConfig",
    "DashboardConfig",
    "MetricsConfig",
    "ModelConfig",
    "MonitorConfig",
    "PreviewConfig",
    "RetentionConfig",
    "SmoothingConfig",
    "StorageConfig",
    "SupervisorConfig",
    "TcpConfig",
    "TransportConfig",
    "WebhookConfig",
    "config_json_schema",
    "deep_merge",
    "load_config",
    "load_config_text",
]
