"""The ``cameras:`` and ``defaults:`` sections: source, reconnects, previews, alert rules."""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from vadmon.config.base import Seconds, StrictModel
from vadmon.config.provisional import ProvisionalConfig
from vadmon.redact import redact_url

CAMERA_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_\-]{0,63}$")
# What the capture process can open (vadmon.capture.source uses this very tuple); a video file
# is a plain path, not a file:// URL.
STREAM_SCHEMES = ("rtsp", "rtsps", "rtmp", "http", "https")


class PreviewConfig(StrictModel):
    """Downscaled JPEG preview stream used for the dashboard, snapshots and clips."""

    fps: float = Field(5.0, gt=0, le=60, title="Preview fps", description="JPEG previews/s.")
    max_width: int = Field(640, ge=64, le=4096, description="Previews wider are downscaled.")
    jpeg_quality: int = Field(80, ge=10, le=100, description="JPEG quality (10-100).")


class SmoothingConfig(StrictModel):
    """Score smoothing before the threshold; EMA reacts fast, median rejects single spikes."""

    kind: Literal["ema", "median", "none"] = Field("ema", description="ema | median | none.")
    window: int = Field(3, ge=1, le=64, description="Median window (snippets).")
    alpha: float = Field(0.5, gt=0, le=1, description="EMA weight of the newest score.")


class AlertsConfig(StrictModel):
    """Turns the per-snippet anomaly score into start/update/end events."""

    threshold: float = Field(0.5, ge=0, le=1, description="Smoothed score that opens an event.")
    hysteresis: float = Field(
        0.1, ge=0, le=1, description="Event closes below threshold - hysteresis."
    )
    min_duration_s: float = Field(
        2.0, ge=0, le=3600, description="Score must stay above threshold this long to open."
    )
    cutoff_s: float = Field(
        3.0, ge=0, le=3600, description="Score must stay below the close level this long to end."
    )
    smoothing: SmoothingConfig = Field(default_factory=SmoothingConfig)
    cooldown_s: float = Field(
        30.0, ge=0, le=86400, description="No new event for the same camera+label within this."
    )
    flood_max_events: int = Field(
        10, ge=1, le=10_000,
        description="Flood guard: at most this many events per camera per flood_window_s; "
        "later ones are counted (log, dashboard, /metrics) and not sent.",
    )  # fmt: skip
    flood_window_s: float = Field(
        600.0, gt=0, le=86_400, description="The flood guard's sliding window."
    )
    pre_capture_s: float = Field(5.0, ge=0, le=120, description="Clip seconds before start.")
    post_capture_s: float = Field(5.0, ge=0, le=120, description="Clip seconds after end.")
    labels_ignore: list[str] = Field(
        default_factory=lambda: ["normal"], description="Class labels that never raise events."
    )
    provisional: ProvisionalConfig = Field(default_factory=ProvisionalConfig)

    @model_validator(mode="after")
    def _close_level_not_negative(self) -> AlertsConfig:
        if self.hysteresis > self.threshold:
            raise ValueError("hysteresis must not exceed threshold (close level would be < 0)")
        return self


class CameraSettings(StrictModel):
    """Per-camera settings; also the shape of the top-level ``defaults:`` section."""

    enabled: bool = Field(True, description="Disabled cameras are validated but not started.")
    fps: float | None = Field(
        None, gt=0, le=240, description="Resample to this fps; null keeps the source fps."
    )
    loop: bool = Field(False, description="Files only: restart at the end instead of stopping.")
    realtime: bool = Field(
        True, description="Files only: pace reading at the source fps like a live camera."
    )
    rtsp_transport: Literal["tcp", "udp"] = Field("tcp", description="RTSP lower transport.")
    open_timeout_s: Seconds = Field(10.0, description="Give up opening the stream after this.")
    read_timeout_s: Seconds = Field(5.0, description="Give up a single frame read after this.")
    stall_timeout_s: Seconds = Field(
        10.0, description="No frame for this long: state 'stalled', then reconnect."
    )
    frozen_timeout_s: Seconds | None = Field(
        30.0, description="Identical frames for this long: reconnect (null = off)."
    )
    backoff_initial_s: Seconds = Field(1.0, description="First reconnect delay (jittered).")
    backoff_max_s: Seconds = Field(60.0, description="Reconnect delay cap; never gives up.")
    preview: PreviewConfig = Field(default_factory=PreviewConfig)
    ring_slots: int = Field(
        32, ge=2, le=1024, description="Sampled frames held in the shared-memory ring (32 ≈ 20 s)."
    )
    alerts: AlertsConfig = Field(default_factory=AlertsConfig)

    @model_validator(mode="after")
    def _backoff_order(self) -> CameraSettings:
        if self.backoff_max_s < self.backoff_initial_s:
            raise ValueError("backoff_max_s must be >= backoff_initial_s")
        return self


class CameraConfig(CameraSettings):
    """One camera. ``source`` may hold credentials: repr/str always show it redacted."""

    source: str | int = Field(
        ...,
        description=(
            "rtsp://, rtmp://, http(s):// URL, webcam index (int) or video file path. "
            "Use ${ENV} placeholders for passwords."
        ),
    )

    @field_validator("source", mode="before")
    @classmethod
    def _source_kind(cls, value: Any) -> Any:
        if isinstance(value, bool):
            raise ValueError("source must be a URL, a file path or a webcam index")
        if isinstance(value, str) and value.strip().isdigit():
            return int(value.strip())
        if isinstance(value, str):
            if not value.strip():
                raise ValueError("source must not be empty")
            scheme = value.split("://", 1)[0].lower() if "://" in value else None
            if scheme is not None and scheme not in STREAM_SCHEMES:
                raise ValueError(
                    f"unsupported URL scheme '{scheme}' (use {', '.join(STREAM_SCHEMES)}, "
                    "or a plain path for a video file)"
                )
        elif isinstance(value, int) and value < 0:
            raise ValueError("webcam index must be >= 0")
        return value

    @property
    def source_kind(self) -> Literal["url", "webcam", "file"]:
        if isinstance(self.source, int):
            return "webcam"
        return "url" if "://" in self.source else "file"

    @property
    def source_redacted(self) -> str:
        return redact_url(self.source)

    def __repr_args__(self):  # noqa: ANN204 - pydantic's own signature
        for name, value in super().__repr_args__():
            yield (
                name,
                (redact_url(value) if name == "source" and isinstance(value, str) else value),
            )
