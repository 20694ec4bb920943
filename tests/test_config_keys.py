"""Every config key changes behaviour: a table from each leaf of ``vadmon config schema`` to
the test that shows its effect, checked both ways, and docs/CONFIG.md generated from it.

Adding a key to the schema without an entry here fails; so does an entry whose test does not
exist. Keys inside ``defaults:`` are the camera keys (``defaults`` is deep-merged into every
camera, tests/test_config.py::test_defaults_deep_merged_camera_wins), so they share the
camera entries.

``test_key_reaches_process_settings`` is the proof for keys that only tune a process: changing
the key alone must change what the composition root (``vadmon.monitor``) hands that process.
Regenerate the doc with ``PYTHONPATH=. python tests/test_config_keys.py > docs/CONFIG.md``.
"""

from __future__ import annotations

import ast
import copy
import json
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from vadmon.config import MonitorConfig

REPO = Path(__file__).resolve().parents[1]
REACH = "tests/test_config_keys.py::test_key_reaches_process_settings"
CAM = "cameras.<name>."
ENC = "tests/test_encoder_backends.py::"
SPLIT = "tests/test_splithost.py::test_split_host_events_have_snapshot_and_clip"
VERDICTS = "tests/test_link_verdict.py::test_capture_hosts_see_their_own_refusals_in_log_and_metrics"
LINK_KEYS = "tests/test_preview_link.py::test_link_preview_keys_set_rate_width_and_quality"
NARRATE = "tests/test_narrate.py::test_explained_webhook_follows_start_with_a_well_formed_request"
NARRATE_CFG = "tests/test_narrate.py::test_model_tokens_and_keyframes_come_from_the_config"
MQTT_EVENTS = "tests/test_mqtt.py::test_events_and_retained_states_arrive_with_the_webhook_body"
MQTT_TLS = "tests/test_mqtt.py::test_tls_with_a_ca_made_here"
MQTT_SCORE = "tests/test_mqtt.py::test_score_topic_is_rate_limited_to_one_per_interval"
MQTT_AUTH = "tests/test_mqtt.py::test_wrong_password_is_one_clear_line_and_webhooks_keep_going"
WEB_LINKS = "tests/test_web_alerts.py::"
WEB_LINKS += "test_payloads_carry_signed_links_text_instance_and_an_embedded_snapshot"
WEB_OPEN = "tests/test_web_config.py::test_auth_off_on_loopback_cors_and_body_limit"
TRITON_SHARED = (
    "tests/test_triton.py::test_two_monitors_share_one_triton_and_it_batches_across_them"
)
TRITON_SLOW = "tests/test_triton.py::test_slow_server_fails_batches_at_the_deadline_and_recovers"
TRITON_EXPORT = (
    "tests/test_triton.py::test_export_writes_a_triton_repository_with_batching_and_the_tower_hash"
)
GATE = "tests/test_change_gate.py::"
GATE_VTEST = GATE + "test_gated_scores_match_ungated_on_vtest_and_flashes_stay_events"
GATE_STATIC = GATE + "test_warmup_pairs_and_max_reuse_decide_when_a_static_scene_is_reused"
GATE_THRESHOLDS = GATE + "test_thresholds_noise_factor_min_delta_and_changed_fraction"
TABLE: dict[str, str] = {
    "instance": REACH,
    "log_level": "tests/test_camera_source_keys.py::test_log_level_reaches_the_capture_process",
    CAM + "source": "tests/test_camera_source_keys.py::"
    "test_capture_streams_with_a_password_full_of_url_characters",
    CAM + "enabled": REACH,
    CAM + "fps": REACH,
    CAM + "loop": "tests/test_camera_source_keys.py::"
    "test_loop_false_ends_the_camera_at_the_end_of_the_file",
    CAM + "realtime": "tests/test_camera_source_keys.py::test_realtime_paces_a_file_at_its_fps",
    CAM + "rtsp_transport": "tests/test_camera_source_keys.py::"
    "test_rtsp_transport_is_what_ffmpeg_asks_for",
    CAM + "open_timeout_s": REACH,
    CAM + "read_timeout_s": REACH,
    CAM + "stall_timeout_s": REACH,
    CAM + "frozen_timeout_s": REACH,
    CAM + "backoff_initial_s": REACH,
    CAM + "backoff_max_s": REACH,
    CAM + "preview.fps": REACH,
    CAM + "preview.max_width": REACH,
    CAM + "preview.jpeg_quality": REACH,
    CAM + "ring_slots": REACH,
    CAM + "alerts.threshold": REACH,
    CAM + "alerts.hysteresis": REACH,
    CAM + "alerts.min_duration_s": REACH,
    CAM + "alerts.cutoff_s": REACH,
    CAM + "alerts.smoothing.kind": REACH,
    CAM + "alerts.smoothing.window": REACH,
    CAM + "alerts.smoothing.alpha": "tests/test_config_keys.py::test_smoothing_alpha_from_config",
    CAM + "alerts.cooldown_s": REACH,
    CAM + "alerts.flood_max_events": "tests/test_faults_alerts.py::"
    "test_flood_guard_is_configurable_and_counted_per_camera",
    CAM + "alerts.flood_window_s": REACH,
    CAM + "alerts.pre_capture_s": REACH,
    CAM + "alerts.post_capture_s": REACH,
    CAM + "alerts.labels_ignore": "tests/test_config_keys.py::test_labels_ignore_from_config",
    CAM + "alerts.provisional.enabled": "tests/test_provisional.py::"
    "test_confirmed_and_withdrawn_reach_a_real_receiver",
    CAM + "alerts.provisional.threshold": "tests/test_provisional.py::"
    "test_threshold_decides_and_defaults_to_the_alert_threshold",
    "model.mode": "tests/test_scores.py::test_zeroshot_from_a_local_weights_file_with_extra_classes",
    "model.checkpoint": "tests/test_scores.py::test_vadclip_open_vocabulary_extra_classes",
    "model.clip_arch": "tests/test_scores.py::"
    "test_zeroshot_from_a_local_weights_file_with_extra_classes",
    "model.clip_pretrained": "tests/test_scores.py::"
    "test_zeroshot_from_a_local_weights_file_with_extra_classes",
    "model.class_names": "tests/test_scores.py::"
    "test_zeroshot_from_a_local_weights_file_with_extra_classes",
    "model.extra_classes": "tests/test_scores.py::test_vadclip_open_vocabulary_extra_classes",
    "model.device": "tests/test_scores.py::"
    "test_zeroshot_from_a_local_weights_file_with_extra_classes",
    "model.precision": "tests/test_precision.py::"
    "test_build_scorer_resolves_auto_once_and_reports_it",
    "model.lookahead": "tests/test_precision.py::"
    "test_build_scorer_resolves_auto_once_and_reports_it",
    "model.max_gap": "tests/test_precision.py::test_build_scorer_resolves_auto_once_and_reports_it",
    "model.window": "tests/test_config_keys.py::test_model_window_sizes_the_scorer",
    "model.snippet_frames": REACH,
    "model.frames_per_snippet": REACH,
    "model.batch_max": REACH,
    "model.batch_wait_ms": REACH,
    "model.threads": REACH,
    "model.encoder.url": TRITON_SHARED,
    "model.encoder.model": "tests/test_triton.py::test_a_wrong_model_or_hash_is_refused_in_one_line",
    "model.encoder.timeout_s": TRITON_SLOW,
    "model.encoder.max_in_flight": TRITON_SLOW,
    "model.encoder.reconnect_initial_s": TRITON_SLOW,
    "model.encoder.reconnect_max_s": TRITON_SLOW,
    "model.encoder.max_batch_size": TRITON_EXPORT,
    "model.encoder.preferred_batch_sizes": TRITON_EXPORT,
    "model.encoder.max_queue_delay_us": TRITON_EXPORT,
    "model.encoder.instances": TRITON_EXPORT,
    "model.encoder.backend": ENC + "test_auto_follows_the_measured_matrix_and_caches_it",
    "model.encoder.cache_dir": ENC + "test_openvino_conversion_cache_hit_and_corrupt_recovery",
    "model.encoder.calibration": ENC
    + "test_calibration_from_the_cameras_and_a_bad_calibration_file",
    "model.encoder.calibration_frames": ENC
    + "test_openvino_conversion_cache_hit_and_corrupt_recovery",
    "model.encoder.gate_cosine": ENC + "test_a_failed_gate_falls_back_to_torch_and_says_why",
    "model.encoder.gate_prob": ENC + "test_a_failed_gate_falls_back_to_torch_and_says_why",
    "webhooks.[].name": "tests/test_webhook_config.py::"
    "test_webhook_events_filter_sends_only_subscribed_kinds",
    "webhooks.[].url": "tests/test_webhook_config.py::"
    "test_webhook_events_filter_sends_only_subscribed_kinds",
    "webhooks.[].secret": "tests/test_webhook_config.py::"
    "test_webhook_events_filter_sends_only_subscribed_kinds",
    "webhooks.[].events": "tests/test_webhook_config.py::"
    "test_webhook_events_filter_sends_only_subscribed_kinds",
    "webhooks.[].timeout_s": "tests/test_webhook_config.py::test_each_webhook_has_its_own_timeout",
    "webhooks.[].max_attempts": "tests/test_webhook_config.py::"
    "test_each_webhook_has_its_own_attempts_and_backoff",
    "webhooks.[].network_retry_s": "tests/test_faults_delivery.py::"
    "test_no_answer_retries_until_its_age_not_a_count",
    "webhooks.[].backoff_initial_s": "tests/test_webhook_config.py::"
    "test_each_webhook_has_its_own_attempts_and_backoff",
    "webhooks.[].backoff_max_s": "tests/test_webhook_config.py::"
    "test_each_webhook_has_its_own_attempts_and_backoff",
    "webhooks.[].allow_private": "tests/test_webhook_config.py::"
    "test_config_check_and_delivery_share_one_address_policy",
    "mqtt.url": MQTT_EVENTS,
    "mqtt.client_id": MQTT_EVENTS,
    "mqtt.username": MQTT_AUTH,
    "mqtt.password": MQTT_AUTH,
    "mqtt.topic_prefix": "tests/test_mqtt.py::test_acl_denied_publish_is_counted_and_visible",
    "mqtt.qos": MQTT_TLS,
    "mqtt.tls.ca_file": MQTT_TLS,
    "mqtt.tls.cert_file": MQTT_TLS,
    "mqtt.tls.key_file": MQTT_TLS,
    "mqtt.tls.insecure": MQTT_TLS,
    "mqtt.discovery": MQTT_TLS,
    "mqtt.discovery_prefix": MQTT_SCORE,
    "mqtt.score_interval_s": MQTT_SCORE,
    "mqtt.max_inflight": "tests/test_mqtt.py::test_broker_killed_mid_event_and_restarted_loses_nothing",
    "storage.dir": "tests/test_file_modes.py::test_event_data_is_private_whatever_the_umask",
    "storage.retention.events_days": REACH,
    "storage.retention.media_days": "tests/test_retention.py::"
    "test_media_older_than_media_days_goes_but_not_an_open_events",
    "storage.retention.max_media_gb": "tests/test_retention.py::"
    "test_media_over_the_size_cap_goes_oldest_first",
    "storage.retention.max_outbox_mb": "tests/test_soak_quota.py::test_soak_with_a_tiny_disk_quota",
    "storage.retention.check_interval_s": REACH,
    "transport.ipc_dir": REACH,
    "transport.tcp.bind": "tests/test_link.py::test_split_hosts_over_curve_refuse_unknown_and_plaintext",
    "transport.tcp.connect": "tests/test_link.py::"
    "test_split_hosts_over_curve_refuse_unknown_and_plaintext",
    "transport.curve.server_secret_file": "tests/test_link.py::"
    "test_split_hosts_over_curve_refuse_unknown_and_plaintext",
    "transport.curve.server_public_file": "tests/test_link.py::"
    "test_split_hosts_over_curve_refuse_unknown_and_plaintext",
    "transport.curve.client_secret_file": "tests/test_link.py::"
    "test_split_hosts_over_curve_refuse_unknown_and_plaintext",
    "transport.curve.allowed_clients_dir": "tests/test_link.py::"
    "test_split_hosts_over_curve_refuse_unknown_and_plaintext",
    "transport.hwm": REACH,
    "transport.curve.client_cameras": "tests/test_link.py::"
    "test_split_hosts_over_curve_refuse_unknown_and_plaintext",
    "transport.tcp.max_clock_skew_s": "tests/test_link.py::"
    "test_split_hosts_over_curve_refuse_unknown_and_plaintext",
    "transport.tcp.preview_fps": LINK_KEYS,
    "transport.tcp.preview_max_width": LINK_KEYS,
    "transport.tcp.preview_jpeg_quality": LINK_KEYS,
    "transport.tcp.preview_buffer_s": "tests/test_preview_link.py::"
    "test_outage_backlog_is_bounded_and_sent_oldest_first_after_reconnect",
    "transport.tcp.verdicts.bind": VERDICTS,
    "transport.tcp.verdicts.connect": VERDICTS,
    "dashboard.enabled": "tests/test_dashboard.py::test_dashboard_disabled_off_terminal_unless_forced",
    "dashboard.refresh_hz": "tests/test_config_keys.py::test_dashboard_refresh_hz_drives_the_live_view",
    "metrics.prometheus_port": "tests/test_dashboard.py::"
    "test_exporters_have_private_registries_and_follow_the_state",
    "metrics.prometheus_host": "tests/test_config_keys.py::test_prometheus_host_is_the_bind_address",
    "supervisor.restart_backoff_initial_s": "tests/test_supervisor.py::"
    "test_crashed_child_restarted_with_backoff",
    "supervisor.restart_backoff_max_s": "tests/test_supervisor.py::"
    "test_crashed_child_restarted_with_backoff",
    "supervisor.crash_loop_restarts": "tests/test_supervisor.py::test_crash_loop_stops_everything",
    "supervisor.park_s": "tests/test_faults_runtime.py::"
    "test_a_camera_in_a_crash_loop_is_parked_and_the_others_keep_running",
    "supervisor.crash_loop_window_s": "tests/test_supervisor.py::test_crash_loop_stops_everything",
    "supervisor.shutdown_deadline_s": "tests/test_supervisor.py::"
    "test_sigterm_stops_all_children_even_stubborn_ones",
    "supervisor.heartbeat_timeout_s": "tests/test_supervisor.py::"
    "test_sigstopped_child_detected_by_heartbeat_and_replaced",
    "supervisor.heartbeat_startup_s": "tests/test_supervisor.py::"
    "test_sigstopped_child_detected_by_heartbeat_and_replaced",
    "explain.phrases": "tests/test_explain.py::test_phrase_bank_follows_the_explain_config",
    "explain.top_k": "tests/test_explain.py::test_phrase_bank_follows_the_explain_config",
    "explain.narrate.url": NARRATE,
    "explain.narrate.model": NARRATE_CFG,
    "explain.narrate.api_key": NARRATE,
    "explain.narrate.timeout_s": "tests/test_narrate.py::test_hanging_server_never_delays_or_loses_the_alert",
    "explain.narrate.concurrency": "tests/test_narrate.py::test_concurrency_bounds_requests_in_flight",
    "explain.narrate.max_per_hour": "tests/test_narrate.py::test_hourly_budget_skips_and_counts",
    "explain.narrate.keyframes": NARRATE_CFG,
    "explain.narrate.max_tokens": NARRATE_CFG,
    "explain.narrate.allow_private": "tests/test_narrate.py::"
    "test_private_narration_url_refused_when_not_allowed",
    "change_gate.enabled": GATE_VTEST,
    "change_gate.warmup_pairs": GATE_STATIC,
    "change_gate.max_reuse": GATE_STATIC,
    "change_gate.noise_factor": GATE_THRESHOLDS,
    "change_gate.min_pixel_delta": GATE_THRESHOLDS,
    "change_gate.max_changed_fraction": GATE_THRESHOLDS,
    "score_log.enabled": "tests/test_replay.py::test_score_log_can_be_switched_off",
    "score_log.keep_hours": "tests/test_replay.py::"
    "test_score_log_rotates_prunes_and_survives_torn_lines_and_bad_disks",
    "calibration_file": "tests/test_calibrate.py::test_broken_calibration_file_is_one_clear_error",
    "webhooks.[].embed_snapshot": WEB_LINKS,
    "web.enabled": "tests/test_web_config.py::"
    "test_web_process_runs_only_when_enabled_and_on_the_inference_host",
    "web.listen": "tests/test_web.py::test_event_routes_list_filter_page_and_describe",
    "web.public_url": WEB_LINKS,
    "web.auth.enabled": WEB_OPEN,
    "web.auth.token": "tests/test_web.py::test_every_route_needs_auth_and_posts_need_csrf",
    "web.link_ttl_s": WEB_LINKS,
    "web.cors_origins": WEB_OPEN,
    "web.max_request_bytes": WEB_OPEN,
    "web.live_fps": REACH,
}

# --------------------------------------------------------------------------- the schema walk


def schema() -> dict[str, Any]:
    """The schema as users get it: ``vadmon config schema``."""
    out = subprocess.run(
        [sys.executable, "-m", "vadmon", "config", "schema"],
        capture_output=True,
        text=True,
        check=True,
        cwd=REPO,
    )
    return json.loads(out.stdout)


def _resolve(node: dict[str, Any], defs: dict[str, Any]) -> dict[str, Any]:
    """``$ref`` / ``anyOf [model, null]`` → the model's schema; other nodes unchanged."""
    if "$ref" in node:
        return defs[node["$ref"].rsplit("/", 1)[1]]
    for key in ("anyOf", "allOf"):
        models = [_resolve(n, defs) for n in node.get(key, []) if "$ref" in n]
        if models:
            return models[0]
    return node


def leaves(node: dict[str, Any], defs: dict[str, Any], path: str = "") -> Iterator[str]:
    """Leaf keys as ``a.b``; ``<name>`` for mapping entries, ``[]`` for list items."""
    node = _resolve(node, defs)
    extra = node.get("additionalProperties")
    items = node.get("items")
    if "properties" in node:
        for key, child in node["properties"].items():
            yield from leaves(child, defs, f"{path}{key}.")
    elif isinstance(extra, dict) and "properties" in _resolve(extra, defs):
        yield from leaves(extra, defs, f"{path}<name>.")
    elif isinstance(items, dict) and "properties" in _resolve(items, defs):
        yield from leaves(items, defs, f"{path}[].")
    else:
        yield path.rstrip(".")


def schema_keys() -> list[str]:
    doc = schema()
    keys = list(leaves(doc, doc.get("$defs", {})))
    camera = {k.removeprefix(CAM) for k in keys if k.startswith(CAM)}
    for key in keys:  # defaults.X is camera key X merged into every camera
        if key.startswith("defaults."):
            assert key.removeprefix("defaults.") in camera, f"{key} is not a camera key"
    return [k for k in keys if not k.startswith("defaults.")]


def defined_tests(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    return {n.name for n in tree.body if isinstance(n, ast.FunctionDef)}


def test_every_leaf_key_has_a_test_that_exists() -> None:
    keys = schema_keys()
    assert len(keys) > 50, "the schema walk found too few keys"
    missing = [k for k in keys if k not in TABLE]
    assert not missing, f"config keys without a test in TABLE: {missing}"
    stale = sorted(set(TABLE) - set(keys))
    assert not stale, f"TABLE names keys the schema no longer has: {stale}"
    for key, node in TABLE.items():
        file, _, name = node.partition("::")
        assert (REPO / file).is_file(), f"{key}: {file} does not exist"
        assert name in defined_tests(REPO / file), f"{key}: {node} does not exist"


# --------------------------------------------------------------------------- the doc


def render_doc() -> str:
    """docs/CONFIG.md: every key, its default and description, and the test of its effect."""
    doc = schema()
    defs = doc.get("$defs", {})
    rows = []
    for key in schema_keys():
        field = _field(doc, defs, key)
        found = field["default"] if "default" in field else _factory_default(key)
        default = "required" if found is REQUIRED else json.dumps(found)
        text = " ".join(str(field.get("description", "")).split()).replace("|", "\\|")
        rows.append(f"| `{key}` | `{default}` | {text} | `{TABLE[key]}` |")
    head = [
        "# Config keys",
        "",
        "Generated from `vadmon config schema` and the table in `tests/test_config_keys.py`;",
        "that test fails when this file is out of date (regenerate:",
        "`PYTHONPATH=. python tests/test_config_keys.py > docs/CONFIG.md`).",
        "Every key names the test that shows its effect. `test_key_reaches_process_settings`",
        "changes the key alone and checks that the settings `vadmon.monitor` hands the process",
        "change; the behaviour of those settings is tested per process (capture, watchdog,",
        "event logic, inference). `defaults.<key>` is any camera key, merged into every camera.",
        "",
        "| key | default | what it does | test |",
        "|---|---|---|---|",
    ]
    return "\n".join(head + rows) + "\n"


def _factory_default(key: str) -> Any:
    """A default made by a factory (lists, sections) is not in the JSON schema: ask the model.
    A key without any default raises KeyError, shown as ``required``."""
    from typing import get_args

    from pydantic import BaseModel

    from vadmon.config import MonitorConfig

    model: Any = MonitorConfig
    parts = [p for p in key.split(".") if p not in ("<name>", "[]")]
    for i, part in enumerate(parts):
        info = model.model_fields[part]
        if i == len(parts) - 1:
            if info.is_required():
                return REQUIRED
            return info.get_default(call_default_factory=True, validated_data={})
        stack, model = [info.annotation], None
        while stack and model is None:
            t = stack.pop()
            if isinstance(t, type) and issubclass(t, BaseModel):
                model = t
            else:
                stack.extend(get_args(t))
    return REQUIRED


REQUIRED = object()  # a key without a default (no factory either)


def _field(node: dict[str, Any], defs: dict[str, Any], key: str) -> dict[str, Any]:
    for part in key.split("."):
        node = _resolve(node, defs)
        if part == "<name>":
            node = node["additionalProperties"]
        elif part == "[]":
            node = node["items"]
        else:
            node = node["properties"][part]
    return node


def test_config_doc_is_generated_from_the_table() -> None:
    doc = REPO / "docs" / "CONFIG.md"
    assert doc.is_file() and doc.read_text() == render_doc(), (
        "docs/CONFIG.md is out of date: PYTHONPATH=. python tests/test_config_keys.py "
        "> docs/CONFIG.md"
    )


# --------------------------------------------------------------------------- reach


BASE: dict[str, Any] = {
    "cameras": {"lobby": {"source": "synthetic:"}, "yard": {"source": "synthetic:"}},
    "model": {"mode": "vadclip", "checkpoint": "x.pt"},
    "transport": {"ipc_dir": "/tmp/vadmon-keys-test"},
}
VARIANTS: dict[str, Any] = {  # key → a value different from the default
    "instance": "other",
    CAM + "enabled": False,
    CAM + "fps": 7.0,
    CAM + "open_timeout_s": 3.0,
    CAM + "read_timeout_s": 3.0,
    CAM + "stall_timeout_s": 4.0,
    CAM + "frozen_timeout_s": None,
    CAM + "backoff_initial_s": 2.0,
    CAM + "backoff_max_s": 9.0,
    CAM + "preview.fps": 2.0,
    CAM + "preview.max_width": 320,
    CAM + "preview.jpeg_quality": 50,
    CAM + "ring_slots": 8,
    CAM + "alerts.threshold": 0.7,
    CAM + "alerts.hysteresis": 0.2,
    CAM + "alerts.min_duration_s": 5.0,
    CAM + "alerts.cutoff_s": 5.0,
    CAM + "alerts.smoothing.kind": "median",
    CAM + "alerts.smoothing.window": 5,
    CAM + "alerts.cooldown_s": 3.0,
    CAM + "alerts.flood_window_s": 120.0,
    CAM + "alerts.pre_capture_s": 9.0,
    CAM + "alerts.post_capture_s": 9.0,
    "model.snippet_frames": 8,
    "model.frames_per_snippet": 2,
    "model.batch_max": 4,
    "model.batch_wait_ms": 5.0,
    "model.threads": 3,
    "storage.retention.events_days": 2.0,
    "storage.retention.check_interval_s": 5.0,
    "transport.ipc_dir": "/tmp/vadmon-keys-other",
    "transport.hwm": 3,
    "web.live_fps": 5.0,
}


def _set(data: dict[str, Any], key: str, value: Any) -> dict[str, Any]:
    data = copy.deepcopy(data)
    parts = key.replace("<name>", "lobby").split(".")
    node = data
    for part in parts[:-1]:
        node = node.setdefault(part, {})
    node[parts[-1]] = value
    return data


def process_view(cfg: MonitorConfig) -> str:
    """Everything ``vadmon.monitor`` hands the processes it starts (and the supervisor)."""
    from vadmon.inference.build import inference_threads
    from vadmon.monitor import child_specs
    from vadmon.settings import (
        alert_settings,
        capture_settings,
        inference_settings,
    )
    from vadmon.web.__main__ import web_settings

    cams = cfg.enabled_cameras()
    parts = [
        [capture_settings(cfg, c) for c in cams],  # their endpoints included
        inference_settings(cfg),
        inference_threads(cfg.model.threads),
        alert_settings(cfg),
        web_settings(cfg),
        [spec.name for spec in child_specs(cfg, Path("c.yaml"))],
        cfg.shm_prefix(),
    ]
    return repr(parts)


@pytest.mark.parametrize("key", sorted(k for k, v in TABLE.items() if v == REACH))
def test_key_reaches_process_settings(key: str) -> None:
    assert key in VARIANTS, f"{key} has no VARIANTS value"
    base = MonitorConfig.model_validate(BASE)
    changed = MonitorConfig.model_validate(_set(BASE, key, VARIANTS[key]))
    assert process_view(changed) != process_view(base), f"{key} changes nothing a process gets"


# --------------------------------------------------------------------------- single keys


def _camera_events(alerts: dict[str, Any]):
    from vadmon.alerts.event import CameraEvents
    from vadmon.settings import event_settings

    cfg = MonitorConfig.model_validate(_set(BASE, CAM + "alerts", alerts))
    return CameraEvents("lobby", event_settings(cfg.cameras["lobby"].alerts))


def _feed(events, values, probs=(0.1, 0.8, 0.1)) -> list[str]:
    from vadmon.runtime.messages import ScoreMessage

    kinds = []
    for i, v in enumerate(values):
        msg = ScoreMessage("lobby", i, 100.0 + i, 101.0 + i, v, v, ["normal", "Fighting", "Abuse"],
                           list(probs))  # fmt: skip
        kinds += [f"{m.kind}@{i}" for m in events.feed(msg)]
    return kinds


def test_smoothing_alpha_from_config() -> None:
    values = [0.0] + [1.0] * 6
    smooth = {"kind": "ema", "alpha": 0.9}
    fast = _feed(_camera_events({"min_duration_s": 0, "smoothing": smooth}), values)
    slow = _feed(
        _camera_events({"min_duration_s": 0, "smoothing": {**smooth, "alpha": 0.2}}), values
    )
    assert fast == ["start@1"]  # 0.9 ≥ 0.5 at once
    assert slow == ["start@4"]  # 0.2, 0.36, 0.488, 0.59: the fourth high score


def test_labels_ignore_from_config() -> None:
    ignore = {"min_duration_s": 0, "smoothing": {"kind": "none"}, "labels_ignore": ["Fighting"]}
    events = _camera_events(ignore)
    assert _feed(events, [0.9] * 3) == []  # the event is a fight: ignored on this camera
    assert events.counters["suppressed_ignored"] == 1
    assert _feed(_camera_events(ignore), [0.9] * 3, (0.1, 0.1, 0.8)) == ["start@0"]  # abuse


def test_model_window_sizes_the_scorer(demo_checkpoint: Path) -> None:
    from vadmon.inference.build import build_scorer

    sizes = []
    for window in (8, 32):
        model = {"mode": "vadclip", "checkpoint": str(demo_checkpoint), "window": window}
        cfg = MonitorConfig.model_validate({**BASE, "model": {**model, "device": "cpu"}})
        sizes.append(build_scorer(cfg.model, cfg.model.device).scorer.window)
    assert sizes == [8, 32]


def test_dashboard_refresh_hz_drives_the_live_view() -> None:
    import io

    from rich.console import Console

    from vadmon.dashboard.console import Dashboard

    cfg = MonitorConfig.model_validate({**BASE, "dashboard": {"enabled": True, "refresh_hz": 7}})
    dash = Dashboard(cfg.dashboard, console=Console(file=io.StringIO(), force_terminal=True))
    try:
        assert dash.start()
        assert dash._live is not None and dash._live.refresh_per_second == 7
    finally:
        dash.stop()


def test_prometheus_host_is_the_bind_address() -> None:
    from vadmon.dashboard.prometheus import start_exporter
    from vadmon.dashboard.state import DashboardState

    with socket.socket() as s:
        s.bind(("127.0.0.2", 0))
        port = s.getsockname()[1]
    metrics = {"prometheus_port": port, "prometheus_host": "127.0.0.2"}
    cfg = MonitorConfig.model_validate({**BASE, "metrics": metrics})
    exporter = start_exporter(cfg.metrics, DashboardState())
    assert exporter is not None
    try:
        socket.create_connection(("127.0.0.2", port), timeout=2).close()
        with pytest.raises(OSError):
            socket.create_connection(("127.0.0.1", port), timeout=2).close()
    finally:
        exporter.stop()


if __name__ == "__main__":
    sys.stdout.write(render_doc())
