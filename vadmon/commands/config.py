"""``vadmon config check FILE`` and ``vadmon config schema``: thin wrappers over vadmon.config."""

from __future__ import annotations

import argparse
import json
import sys

from vadmon.config import config_json_schema, load_config
from vadmon.config.load import ConfigErrors
from vadmon.errors import VadmonError


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("config", help="validate a config file or print its schema")
    sub = parser.add_subparsers(dest="config_command", required=True)
    check = sub.add_parser(
        "check",
        help="validate FILE: every problem, checkpoint/video files, webhook URLs; exit 2 on errors",
    )
    check.add_argument("file", help="YAML config file")
    check.set_defaults(handler=run_check)
    schema = sub.add_parser("schema", help="print the JSON schema of the config file")
    schema.set_defaults(handler=run_schema)


def run_check(args: argparse.Namespace) -> int:
    from vadmon.monitor import implied_role
    from vadmon.startup import weights
    from vadmon.startup.preflight import preflight_problems

    try:
        config = load_config(args.file)
    except ConfigErrors as exc:
        return _report(exc.problems, args.file)
    # exactly the checks `vadmon run` makes before it starts anything
    problems = preflight_problems(config, implied_role(config), args.file)
    if problems:
        return _report(problems, args.file)
    cameras = config.cameras
    enabled = config.enabled_cameras()
    print(f"{args.file}: OK — {len(cameras)} camera(s), {len(enabled)} enabled")
    calibrated, cal_path = _calibrated(config, args.file)
    for name, camera in cameras.items():
        state = "enabled" if camera.enabled else "disabled"
        fps = "source fps" if camera.fps is None else f"{camera.fps:g} fps"
        print(f"  camera {name}: {camera.source_redacted} ({camera.source_kind}, {fps}, {state})")
        source = f"calibrated, {cal_path}" if name in calibrated else "config"
        print(f"    threshold in effect: {camera.alerts.threshold:.2f} ({source})")
    model = config.model
    if model is None:
        print("  model: none (capture only: snippets go to transport.tcp.connect)")
    else:
        detail = model.checkpoint if model.mode == "vadclip" else model.clip_pretrained
        print(f"  model: {model.mode} ({detail}), {model.clip_arch}, device {model.device}")
        for src in weights.sources(model):
            print(f"  weights: {src.kind} {src.location}")
    for hook in config.webhooks:
        print(f"  webhook {hook.name}: events {', '.join(hook.events)}")
    print(f"  storage: {config.storage.dir}; ipc: {config.ipc_dir()}")
    return 0


def _calibrated(config, file: str) -> tuple[dict[str, float], str]:
    """Cameras whose threshold comes from ``vadmon calibrate``'s file (load_config applied it)."""
    from pathlib import Path

    from vadmon.config.calibration import calibration_path, read_calibration

    path = calibration_path(config, Path(file))
    return (read_calibration(path) if path.is_file() else {}), str(path)


def _report(problems: list[VadmonError], where: str) -> int:
    from vadmon.startup.preflight import report

    return report(problems, where)


def run_schema(args: argparse.Namespace) -> int:
    json.dump(config_json_schema(), sys.stdout, indent=2)
    sys.stdout.write("\n")
    return 0
