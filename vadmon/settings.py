"""Config → each process's settings: the only place that reads the validated config for them.

Why one place: the settings dataclasses of capture, inference and alerts carry no defaults of
their own, so the config schema (``vadmon.config.models``) is the single source of every value a
user can set, and a process started by hand behaves exactly like one started by ``vadmon run``.
The few values below that have no config key are fixed by design (socket buffers, heartbeat
cadence, internal limits); they are named here, next to the mapping, rather than hidden as
dataclass defaults. Process code never imports this module: each process's entry module
(``python -m vadmon.capture`` …) does, as does the supervisor's side (``vadmon.monitor``).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from vadmon.alerts.clip_writer import ClipSettings
from vadmon.alerts.delivery import DeliverySettings, Endpoint, RetryPolicy
from vadmon.alerts.event import EventSettings
from vadmon.alerts.narrate import NarrateSettings
from vadmon.alerts.process import AlertSettings, ScoreLogSettings
from vadmon.alerts.provisional import ProvisionalSettings
from vadmon.alerts.retention import RetentionSettings
from vadmon.alerts.webhook_url import check_url
from vadmon.capture.setup import CaptureEndpoints, CaptureSettings, capture_endpoints
from vadmon.capture.snippet import SnippetSettings
from vadmon.capture.watchdog import WatchdogSettings
from vadmon.config import AlertsConfig, MonitorConfig, WebhookConfig
from vadmon.errors import VadmonError
from vadmon.runtime.link import LinkClient, LinkPreviewSettings, LinkServer
from vadmon.runtime.link_verdict import next_port
from vadmon.runtime.security import PUBLIC_SUFFIX, load_allowed_clients, load_public_key
from vadmon.runtime.transport import ipc_endpoint
from vadmon.settings_channels import mqtt_settings, payload_settings

if TYPE_CHECKING:
    from vadmon.inference.process import InferenceSettings

# --- fixed by design: no config key (changing one is a code change, with its measurement) ----
CAPTURE_STATUS_INTERVAL_S = 1.0  # heartbeat cadence; the supervisor's timeout is 10x this
CAPTURE_PUB_HWM = 16  # frame/preview PUB queue: a slow subscriber loses previews, not memory
CAPTURE_SNIPPET_HWM = 4  # snippets waiting for inference; more is only latency
# snippets a camera holds (frames copied, ~0.26 MB each) until inference has loaded its model:
# 32 × 1.6 s ≈ 50 s, longer than ViT-B/16 takes to load on a loaded CPU
CAPTURE_HOLD_SNIPPETS = 32
FROZEN_TOLERANCE = 0.5  # mean abs difference of 32x32 thumbnails counted as "the same image"
FROZEN_CHECK_S = 0.2  # one such thumbnail per 0.2 s, not per frame (capture CPU, issue 24)
INFERENCE_MAX_AGE_S = 4.0  # snippets older than this when inference gets to them are skipped
INFERENCE_PER_CAMERA_MAX = 2  # newest snippets kept per camera per batch
GATE_THUMB_WIDTH = 64  # change gate thumbnails: 64x48 for 4:3, each pixel averages ~144 at 768
HEARTBEAT_S = 1.0  # inference and alerts heartbeat cadence
EVENT_UPDATE_INTERVAL_S = 5.0  # at most one ``update`` webhook per event this often…
EVENT_PEAK_DELTA = 0.05  # …and only when the peak score rose by this much
EVENT_STALE_S = 10.0  # no score for this long: an open event ends ("stale")
NORMAL_LABEL = "normal"  # class name of the non-anomalous class (first class of VadCLIP)
CLIP_RING_S = 30.0  # seconds of previews kept per camera for pre-roll
CLIP_MAX_S = 120.0  # longest clip written
CLIP_FINISH_GRACE_S = 5.0  # wait this long for late previews before cutting a clip
CLIP_DEFAULT_FPS = 10.0  # clip frame rate when previews are too few to measure one
DELIVERY_CONNECT_TIMEOUT_S = 5.0
DELIVERY_MAX_RETRY_AFTER_S = 3600.0  # a receiver's Retry-After is capped at this
DELIVERY_POLL_S = 1.0  # outbox poll when idle
DELIVERY_BATCH = 100  # outbox rows per poll
# on exit, keep delivering this long: the outbox keeps the rest for the next start, and a stop
# must take ≤ 3 s in all (issue 21)
ALERTS_FLUSH_S = 1.0
ALERTS_MAX_PENDING = 10_000  # outbox rows before new messages are refused (disk guard)
DAY_S = 86400.0


# --- endpoints and links --------------------------------------------------------------------


def endpoints_dir(cfg: MonitorConfig) -> Path:
    return cfg.ipc_dir()


def link_client(cfg: MonitorConfig) -> LinkClient | None:
    """Capture side of a tcp link (``transport.tcp.connect``), or None for shared memory."""
    tcp, curve = cfg.transport.tcp, cfg.transport.curve
    if tcp is None or tcp.connect is None or curve is None:
        return None
    need(curve.client_secret_file, "transport.curve.client_secret_file")
    need(curve.server_public_file, "transport.curve.server_public_file")
    previews = LinkPreviewSettings(
        tcp.preview_fps, tcp.preview_max_width, tcp.preview_jpeg_quality, tcp.preview_buffer_s
    )
    verdicts = tcp.verdicts.connect or next_port(tcp.connect, "transport.tcp.verdicts.connect")
    return LinkClient(
        tcp.connect, curve.client_secret_file, curve.server_public_file, previews, verdicts
    )


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
        tcp.verdicts.bind or next_port(tcp.bind, "transport.tcp.verdicts.bind"),
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


def preview_endpoints(cfg: MonitorConfig) -> list[str]:
    """Where the alerts process takes previews from: every enabled camera's PUB."""
    return [camera_endpoints(cfg, c).publish for c in cfg.enabled_cameras()]


# --- capture --------------------------------------------------------------------------------


def snippet_shape(cfg: MonitorConfig) -> tuple[int, int]:
    """(snippet_frames, frames_per_snippet): the model's, or its schema defaults on a
    capture-only host without a ``model`` section (they must match the inference host's)."""
    if cfg.model is not None:
        return cfg.model.snippet_frames, cfg.model.frames_per_snippet
    from vadmon.config.models import ModelConfig

    fields = ModelConfig.model_fields
    return fields["snippet_frames"].default, fields["frames_per_snippet"].default


def capture_settings(cfg: MonitorConfig, camera: str) -> CaptureSettings:
    if camera not in cfg.cameras:
        raise VadmonError(f"camera {camera!r} is not in the config", "--camera")
    cam = cfg.cameras[camera]
    snippet_frames, frames_per_snippet = snippet_shape(cfg)
    try:
        snippet = SnippetSettings(
            snippet_frames=snippet_frames,
            frames_per_snippet=frames_per_snippet,
            fps=float(cam.fps or 0.0),
        )
    except ValueError as exc:
        raise VadmonError(str(exc), "model.snippet_frames / frames_per_snippet") from None
    watchdog = WatchdogSettings(
        stall_timeout_s=cam.stall_timeout_s,
        connect_timeout_s=max(cam.open_timeout_s * 2, cam.stall_timeout_s),
        backoff_initial_s=cam.backoff_initial_s,
        backoff_max_s=cam.backoff_max_s,
        frozen_timeout_s=float(cam.frozen_timeout_s or 0.0),
        frozen_tolerance=FROZEN_TOLERANCE,
        frozen_check_s=FROZEN_CHECK_S,
    )
    return CaptureSettings(
        camera=camera,
        source=str(cam.source),
        loop=cam.loop,
        realtime=cam.realtime,
        rtsp_transport=cam.rtsp_transport,
        open_timeout_ms=int(cam.open_timeout_s * 1000),
        read_timeout_ms=int(cam.read_timeout_s * 1000),
        ring_slots=cam.ring_slots,
        snippet=snippet,
        watchdog=watchdog,
        preview_fps=cam.preview.fps,
        preview_max_width=cam.preview.max_width,
        preview_jpeg_quality=cam.preview.jpeg_quality,
        status_interval_s=CAPTURE_STATUS_INTERVAL_S,
        pub_hwm=CAPTURE_PUB_HWM,
        snippet_hwm=CAPTURE_SNIPPET_HWM,
        hold_snippets=CAPTURE_HOLD_SNIPPETS,
        endpoints=camera_endpoints(cfg, camera),
    )


# --- inference ------------------------------------------------------------------------------


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
        max_age_s=INFERENCE_MAX_AGE_S,
        per_camera_max=INFERENCE_PER_CAMERA_MAX,
        hwm=cfg.transport.hwm,
        heartbeat_s=HEARTBEAT_S,
        link=link_server(cfg),
        cameras=frozenset(cams),
        change_gate=gate_settings(cfg),
        provisional=frozenset(provisional_settings(cfg)),
    )


def gate_settings(cfg: MonitorConfig):
    """``change_gate:`` → ``GateSettings``, None when it is off (every snippet encoded)."""
    from vadmon.inference.change_gate import GateSettings

    g = cfg.change_gate
    if not g.enabled:
        return None
    return GateSettings(**g.model_dump(exclude={"enabled"}), thumb_width=GATE_THUMB_WIDTH)


# --- alerts ---------------------------------------------------------------------------------


def event_settings(alerts: AlertsConfig) -> EventSettings:
    sm = alerts.smoothing
    return EventSettings(
        threshold=alerts.threshold,
        hysteresis=alerts.hysteresis,
        min_duration_s=alerts.min_duration_s,
        cutoff_s=alerts.cutoff_s,
        smoothing=sm.kind,
        smoothing_window=sm.window,
        smoothing_alpha=sm.alpha,
        labels_ignore=tuple(alerts.labels_ignore),
        cooldown_s=alerts.cooldown_s,
        update_interval_s=EVENT_UPDATE_INTERVAL_S,
        peak_delta=EVENT_PEAK_DELTA,
        max_events_per_window=alerts.flood_max_events,
        rate_window_s=alerts.flood_window_s,
        stale_s=EVENT_STALE_S,
        normal_label=NORMAL_LABEL,
    )


def clip_settings(cfg: MonitorConfig) -> ClipSettings:
    """One clip writer serves every camera: pre/post roll is the longest any camera asks for."""
    cams = cfg.enabled_cameras().values()
    return ClipSettings(
        out_dir=cfg.storage.media_dir,
        pre_s=max(
            (c.alerts.pre_capture_s for c in cams), default=cfg.defaults.alerts.pre_capture_s
        ),
        post_s=max(
            (c.alerts.post_capture_s for c in cams), default=cfg.defaults.alerts.post_capture_s
        ),
        ring_s=CLIP_RING_S,
        max_clip_s=CLIP_MAX_S,
        finish_grace_s=CLIP_FINISH_GRACE_S,
        default_fps=CLIP_DEFAULT_FPS,
    )


def webhook_endpoint(w: WebhookConfig) -> Endpoint:
    """One configured webhook → its endpoint, with its own event filter and retry policy."""
    retry = RetryPolicy(
        max_attempts=w.max_attempts,
        backoff_initial_s=w.backoff_initial_s,
        backoff_max_s=w.backoff_max_s,
        timeout_s=w.timeout_s,
        network_retry_s=w.network_retry_s,
    )
    allow = w.allow_private if isinstance(w.allow_private, bool) else tuple(w.allow_private)
    secret = (w.secret.get_secret_value(),)
    return Endpoint(w.name, w.url, secret, allow, events=tuple(w.events), retry=retry)


def delivery_settings(cfg: MonitorConfig) -> DeliverySettings:
    """Every endpoint with its own event filter and retry policy."""
    return DeliverySettings(
        endpoints=tuple(webhook_endpoint(w) for w in cfg.webhooks),
        connect_timeout_s=DELIVERY_CONNECT_TIMEOUT_S,
        max_retry_after_s=DELIVERY_MAX_RETRY_AFTER_S,
        poll_interval_s=DELIVERY_POLL_S,
        batch=DELIVERY_BATCH,
    )


def alert_settings(cfg: MonitorConfig) -> AlertSettings:
    cams = cfg.enabled_cameras()
    return AlertSettings(
        db_path=cfg.storage.outbox_db,
        clips=clip_settings(cfg),
        events=event_settings(cfg.defaults.alerts),
        per_camera={name: event_settings(c.alerts) for name, c in cams.items()},
        delivery=delivery_settings(cfg),
        retention=retention_settings(cfg),
        heartbeat_s=HEARTBEAT_S,
        flush_s=ALERTS_FLUSH_S,
        max_pending=ALERTS_MAX_PENDING,
        narrate=narrate_settings(cfg),
        score_log=score_log_settings(cfg),
        mqtt=mqtt_settings(cfg, NORMAL_LABEL),
        payload=payload_settings(cfg),
        provisional=provisional_settings(cfg),
        score_endpoint=score_endpoint(cfg),
        preview_endpoints=preview_endpoints(cfg),
    )


def provisional_settings(cfg: MonitorConfig) -> dict[str, ProvisionalSettings]:
    """``alerts.provisional`` of the cameras that turned it on (threshold null: the camera's
    alert threshold)."""
    out = {}
    for name, c in cfg.enabled_cameras().items():
        p = c.alerts.provisional
        if p.enabled:
            out[name] = ProvisionalSettings(
                c.alerts.threshold if p.threshold is None else p.threshold
            )
    return out


def retention_settings(cfg: MonitorConfig) -> RetentionSettings:
    """``storage.retention`` in bytes and seconds (``None``: no limit of that kind)."""
    r = cfg.storage.retention
    return RetentionSettings(
        media_dir=cfg.storage.media_dir,
        media_max_age_s=r.media_days * DAY_S,
        media_max_bytes=None if r.max_media_gb is None else int(r.max_media_gb * 1e9),
        events_max_age_s=r.events_days * DAY_S,
        outbox_max_bytes=None if r.max_outbox_mb is None else int(r.max_outbox_mb * 1e6),
        interval_s=r.check_interval_s,
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
