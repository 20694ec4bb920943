"""The config schema: pydantic models for the monitor's YAML file.

Loading and error reporting live in ``vadmon.config.load``; import both through
``vadmon.config``. The camera and webhook sections are ``camera.py`` and ``webhook.py``; this
module holds the rest and the whole (``MonitorConfig``). Models forbid unknown keys; field
titles/descriptions/bounds are the user documentation, so keep them accurate when adding fields.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Literal

from pydantic import Field, PrivateAttr, field_validator, model_validator

from vadmon.config.base import StrictModel
from vadmon.config.camera import CAMERA_NAME, CameraConfig, CameraSettings
from vadmon.config.change_gate import ChangeGateConfig
from vadmon.config.encoder import EncoderConfig
from vadmon.config.explain import ExplainConfig, ScoreLogConfig
from vadmon.config.link_verdict import VerdictConfig
from vadmon.config.mqtt import MqttConfig
from vadmon.config.web import WebConfig
from vadmon.config.webhook import WebhookConfig

# --------------------------------------------------------------------------- model


# snippets; chosen from the measured table in docs/RESEARCH.md "Lookahead": the smallest d at which all
# three measured models reach event F1 = 1 and correlation with offline >= 0.85 (2.56 s at 25 fps)
LOOKAHEAD_DEFAULT = 4

MAX_CAMERAS = 64
"""Cameras one monitor runs (a capture process each; checked by ``vadmon config check``)."""


class ModelConfig(StrictModel):
    """Which anomaly model scores the snippets."""

    mode: Literal["vadclip", "zeroshot"] = Field(
        "vadclip", description="vadclip: trained checkpoint; zeroshot: CLIP prompts only."
    )
    checkpoint: Path | None = Field(None, description="VadCLIP checkpoint (required for vadclip).")
    clip_arch: str = Field("ViT-B-16", min_length=1, description="open_clip architecture name.")
    clip_pretrained: str | None = Field(
        None,
        description=(
            "open_clip pretrained tag (e.g. 'openai') or local weights file; optional when the "
            "checkpoint carries CLIP. Weights are never downloaded."
        ),
    )
    class_names: list[str] | None = Field(
        None, min_length=2, description="Override the checkpoint's class names (first = normal)."
    )
    extra_classes: list[str] = Field(
        default_factory=list, description="Extra free-text classes for the A-Branch / zero-shot."
    )
    device: str = Field(
        "auto", pattern=r"^(auto|cpu|cuda|cuda:\d+)$", description="auto|cpu|cuda[:N]."
    )
    precision: Literal["auto", "fp32", "bf16", "fp16", "int8"] = Field(
        "auto",
        description="CLIP image tower + adapter precision. auto: on CPU, a short measured probe "
        "of fp32, bf16 and int8 (image tower Linear layers, dynamic) on this machine, cached in "
        "~/.cache/vadmon and logged; on GPUs bf16 where supported, else fp16. int8 keeps the "
        "adapter fp32. With model.encoder.backend auto (the default) the probe chooses backend "
        "and precision together (docs/ENCODERS.md).",
    )
    window: int = Field(
        256,
        ge=1,
        le=4096,
        description="Snippets in the sliding window (<= checkpoint visual length).",
    )
    lookahead: int = Field(
        LOOKAHEAD_DEFAULT,
        ge=0,
        le=4096,
        description="Snippets to wait before scoring a snippet, so its window also holds the "
        "next ones (offline VadCLIP sees the future). Adds lookahead × snippet duration of "
        "latency; capped (logged) at window - attention block. docs/RESEARCH.md 'Lookahead' has the "
        "measured trade-off.",
    )
    max_gap: int = Field(
        4,
        ge=0,
        le=1024,
        description="Missing snippets (skipped or an outage, by index or by time) filled by "
        "holding the last embedding; a longer gap starts a new window.",
    )
    snippet_frames: int = Field(16, ge=1, le=256, description="Frames per snippet.")
    frames_per_snippet: int = Field(
        1, ge=1, le=256, description="Frames per snippet sent through CLIP (averaged)."
    )
    batch_max: int = Field(16, ge=1, le=1024, description="Max snippets per CLIP batch.")
    batch_wait_ms: float = Field(20.0, ge=0, le=5000, description="Wait to fill a batch.")
    threads: int | None = Field(
        None,
        ge=1,
        le=1024,
        description="torch CPU threads of the inference process; null = cores − 1 (at least 1), "
        "leaving a core to capture and alerts. Measured on 2 cores (vadmon bench monitor): "
        "1 thread sustains 4 cameras at 25 fps, 2 threads not even 1.",
    )
    encoder: EncoderConfig = Field(
        default_factory=EncoderConfig, description="Image tower backend (docs/ENCODERS.md)."
    )

    @model_validator(mode="after")
    def _consistent(self) -> ModelConfig:
        if self.mode == "vadclip" and self.checkpoint is None:
            raise ValueError("mode 'vadclip' needs 'checkpoint' (or use mode: zeroshot)")
        if self.mode == "zeroshot" and self.clip_pretrained is None:
            raise ValueError("mode 'zeroshot' needs 'clip_pretrained' (CLIP weights)")
        if self.frames_per_snippet > self.snippet_frames:
            raise ValueError("frames_per_snippet must be <= snippet_frames")
        return self


# --------------------------------------------------------------------------- the rest


class RetentionConfig(StrictModel):
    """How long stored events and media are kept; oldest go first, open events never."""

    events_days: float = Field(
        30.0,
        gt=0,
        le=3650,
        description="Closed events and their sent/dead webhook rows (outbox) older than this "
        "are deleted; pending webhooks are kept.",
    )
    media_days: float = Field(
        7.0, gt=0, le=3650, description="Snapshots and clips older than this are deleted."
    )
    max_media_gb: float | None = Field(
        None,
        gt=0,
        description="Delete oldest media above this total (null = no limit); when even that "
        "leaves no room, new media is skipped and the event is sent without it.",
    )
    max_outbox_mb: float | None = Field(
        None,
        gt=0,
        description="Delete oldest closed events and their webhook rows while the outbox "
        "holds more than this (null = no limit).",
    )
    check_interval_s: float = Field(
        60.0, gt=0, le=86400, description="How often age and size limits are enforced."
    )


class StorageConfig(StrictModel):
    """Where events, clips, snapshots and the webhook outbox live."""

    dir: Path = Field(Path("runs"), description="Root directory for everything written.")
    retention: RetentionConfig = Field(default_factory=RetentionConfig)

    @property
    def outbox_db(self) -> Path:
        """Events and their webhook deliveries (one SQLite file)."""
        return self.dir / "outbox.sqlite"

    @property
    def media_dir(self) -> Path:
        """Snapshots and clips, one folder per camera."""
        return self.dir / "media"


class TcpConfig(StrictModel):
    """Capture and inference on different hosts: snippets (frames inline) over tcp + CURVE."""

    bind: str | None = Field(
        None,
        pattern=r"^tcp://",
        description="Inference host: bind the snippet PULL here, e.g. tcp://0.0.0.0:5555.",
    )
    connect: str | None = Field(
        None,
        pattern=r"^tcp://",
        description="Capture host: send snippets to the inference host, e.g. tcp://10.0.0.2:5555.",
    )
    max_clock_skew_s: float = Field(
        30.0,
        gt=0,
        le=3600,
        description="Inference host: a snippet or preview dated further than this ahead of our "
        "clock is dropped (counted): it would hold back that camera's events (older ones are "
        "stale and skipped anyway).",
    )
    preview_fps: float = Field(
        2.0,
        ge=0,
        le=30,
        description="Capture host: preview JPEGs/s per camera sent over the link for snapshots "
        "and clips (0: none; snippets always take precedence).",
    )
    preview_max_width: int = Field(
        320, ge=64, le=1920, description="Link previews are at most this wide."
    )
    preview_jpeg_quality: int = Field(
        70, ge=10, le=100, description="JPEG quality of link previews."
    )
    preview_buffer_s: float = Field(
        30.0,
        ge=0,
        le=600,
        description="Capture host: seconds of previews kept while the link is down, sent "
        "oldest first when it is back.",
    )
    verdicts: VerdictConfig = Field(
        default_factory=VerdictConfig, description="The back-channel: refusals told to capture."
    )


class CurveConfig(StrictModel):
    """CURVE encryption/authentication for tcp links (keys from ``vadmon keys``)."""

    server_secret_file: Path | None = Field(None, description="Server *.key_secret file.")
    server_public_file: Path | None = Field(None, description="Server *.key (clients need it).")
    client_secret_file: Path | None = Field(None, description="This client's *.key_secret.")
    allowed_clients_dir: Path | None = Field(
        None, description="Directory of client public *.key files the server accepts."
    )
    client_cameras: dict[str, list[str]] | None = Field(
        None,
        description="Server: client key name (NAME.key in allowed_clients_dir) → the cameras "
        "that client may send; other cameras from it are dropped (counted). null = any "
        "configured camera from any allowed client.",
    )


class TransportConfig(StrictModel):
    """ZeroMQ transport between processes (ipc by default)."""

    ipc_dir: Path | None = Field(
        None,
        description=(
            "Directory (mode 0700) for ipc sockets; default $XDG_RUNTIME_DIR/vadmon-<instance> "
            "or /tmp/vadmon-<uid>-<instance>."
        ),
    )
    tcp: TcpConfig | None = Field(None, description="tcp endpoints (null = ipc only).")
    curve: CurveConfig | None = Field(None, description="CURVE keys (needed with tcp).")
    hwm: int = Field(8, ge=1, le=100000, description="High-water mark per socket (messages).")

    @model_validator(mode="after")
    def _tcp_needs_curve(self) -> TransportConfig:
        if self.tcp is not None and (self.tcp.bind or self.tcp.connect) and self.curve is None:
            raise ValueError("tcp links need 'curve' keys (create them with 'vadmon keys')")
        return self


class DashboardConfig(StrictModel):
    """Terminal dashboard (rich)."""

    enabled: Literal["auto"] | bool = Field("auto", description="auto = only on a terminal.")
    refresh_hz: float = Field(4.0, gt=0, le=30, description="Redraws per second.")


class MetricsConfig(StrictModel):
    """Prometheus exporter."""

    prometheus_port: int | None = Field(
        None, ge=1, le=65535, description="Serve /metrics on this port (null = off)."
    )
    prometheus_host: str = Field("127.0.0.1", description="Bind address for /metrics.")


class SupervisorConfig(StrictModel):
    """Process supervision: restarts, crash loops, heartbeats, shutdown."""

    restart_backoff_initial_s: float = Field(0.5, gt=0, le=3600, description="First restart delay.")
    restart_backoff_max_s: float = Field(30.0, gt=0, le=3600, description="Restart delay cap.")
    crash_loop_restarts: int = Field(
        5, ge=1, le=1000, description="K: a child may restart K times within the window..."
    )
    crash_loop_window_s: float = Field(
        60.0, gt=0, le=86400,
        description="...T seconds; one more crash parks a camera (the others keep running) "
        "or, for inference/alerts, stops everything.",
    )  # fmt: skip
    park_s: float = Field(
        600.0, gt=0, le=86400,
        description="A camera parked for a crash loop is tried again after this long.",
    )  # fmt: skip
    shutdown_deadline_s: float = Field(
        10.0, gt=0, le=600, description="SIGTERM, wait this long, then SIGKILL."
    )
    heartbeat_timeout_s: float = Field(
        10.0, gt=0, le=3600, description="Child silent this long (e.g. SIGSTOPped) is killed."
    )
    heartbeat_startup_s: float = Field(
        120.0, gt=0, le=3600, description="Allowed time until a child's first heartbeat."
    )

    @model_validator(mode="after")
    def _backoff_order(self) -> SupervisorConfig:
        if self.restart_backoff_max_s < self.restart_backoff_initial_s:
            raise ValueError("restart_backoff_max_s must be >= restart_backoff_initial_s")
        return self


class MonitorConfig(StrictModel):
    """The whole monitor: cameras, model, alert delivery and process plumbing."""

    instance: str = Field(
        "default",
        pattern=r"^[A-Za-z0-9][A-Za-z0-9_\-]{0,31}$",
        description="Instance name; separates ipc dirs/shared memory of monitors on one host.",
    )
    log_level: Literal["debug", "info", "warning", "error"] = Field(
        "info", description="Log level of every process."
    )
    defaults: CameraSettings = Field(
        default_factory=CameraSettings,
        description="Deep-merged into every camera (camera values win).",
    )
    cameras: dict[str, CameraConfig] = Field(
        ..., min_length=1, max_length=MAX_CAMERAS,
        description=f"Cameras by name; at most {MAX_CAMERAS} per monitor (one capture process "
        "each): split more across monitors, each with its own instance and storage.dir.",
    )  # fmt: skip
    model: ModelConfig | None = Field(
        None,
        description="The anomaly model (no default: weights are local). Only a capture-only "
        "host (--role capture) may leave it out; it then cuts snippets with the defaults of "
        "model.snippet_frames and model.frames_per_snippet.",
    )
    webhooks: list[WebhookConfig] = Field(default_factory=list)
    mqtt: MqttConfig = Field(default_factory=MqttConfig)
    storage: StorageConfig = Field(default_factory=StorageConfig)
    transport: TransportConfig = Field(default_factory=TransportConfig)
    dashboard: DashboardConfig = Field(default_factory=DashboardConfig)
    metrics: MetricsConfig = Field(default_factory=MetricsConfig)
    supervisor: SupervisorConfig = Field(default_factory=SupervisorConfig)
    explain: ExplainConfig = Field(default_factory=ExplainConfig)
    web: WebConfig = Field(default_factory=WebConfig)
    score_log: ScoreLogConfig = Field(default_factory=ScoreLogConfig)
    change_gate: ChangeGateConfig = Field(default_factory=ChangeGateConfig)
    calibration_file: Path | None = Field(
        None,
        description="Per-camera thresholds written by `vadmon calibrate`; null: "
        "<config name>.calibration.yaml beside the config, when it exists.",
    )
    _secrets: tuple[str, ...] = PrivateAttr(default=())

    def secret_values(self) -> tuple[str, ...]:
        """Every ``${ENV}`` value substituted into the file (raw and as encoded into URLs):
        log scrubbers mask exactly these, instead of guessing a password from a URL."""
        return self._secrets

    @field_validator("cameras")
    @classmethod
    def _camera_names(cls, cameras: dict[str, CameraConfig]) -> dict[str, CameraConfig]:
        for name in cameras:
            if not CAMERA_NAME.match(name):
                raise ValueError(f"camera name '{name}' must be 1-64 letters, digits, '_' or '-'")
        return cameras

    @field_validator("webhooks")
    @classmethod
    def _unique_webhooks(cls, hooks: list[WebhookConfig]) -> list[WebhookConfig]:
        names = [h.name for h in hooks]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"duplicate webhook name(s): {', '.join(dupes)}")
        return hooks

    def enabled_cameras(self) -> dict[str, CameraConfig]:
        return {name: cam for name, cam in self.cameras.items() if cam.enabled}

    def ipc_dir(self) -> Path:
        """The ipc socket directory (configured, or per-user runtime dir + instance)."""
        if self.transport.ipc_dir is not None:
            return self.transport.ipc_dir
        runtime = os.environ.get("XDG_RUNTIME_DIR")
        if runtime and Path(runtime).is_dir():
            return Path(runtime) / f"vadmon-{self.instance}"
        return Path(tempfile.gettempdir()) / f"vadmon-{os.getuid()}-{self.instance}"

    def shm_prefix(self) -> str:
        """Name prefix of this instance's shared-memory segments.

        Ends in ``.``, which instance names cannot contain, so instance ``adv9``'s prefix is
        not also a prefix of ``adv9-b``'s segments. A running monitor appends a per-run token
        (``vadmon.monitor``) and cleans up only that.
        """
        return f"vadmon-{os.getuid()}-{self.instance}."

    def lock_path(self) -> Path:
        """The per-instance lock file (``vadmon.runtime.instance_lock``)."""
        runtime = os.environ.get("XDG_RUNTIME_DIR")
        base = Path(runtime) if runtime and Path(runtime).is_dir() else Path(tempfile.gettempdir())
        return base / f"vadmon-{os.getuid()}-{self.instance}.lock"
