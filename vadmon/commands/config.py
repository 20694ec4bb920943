"""``vadmon config check FILE`` and ``vadmon config schema``: thin wrappers over vadmon.config."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from vadmon.config import MonitorConfig, config_json_schema, load_config
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


def file_problems(config: MonitorConfig, where: str) -> list[VadmonError]:
    """What validation cannot see but ``run`` would trip over: missing files, refused URLs."""
    from vadmon.alerts.webhook_url import UrlRefused, UrlUnresolved, check_url
    from vadmon.capture.source import FileSource, open_source

    problems = []
    model = config.model
    if model.checkpoint is not None and not Path(model.checkpoint).is_file():
        problems.append(
            VadmonError(
                f"checkpoint file not found (got '{model.checkpoint}')",
                f"{where} (model.checkpoint)",
                "train one (vadmon train) or convert a published one (vadmon import-checkpoint)",
            )
        )
    for name, camera in config.cameras.items():
        source = open_source(str(camera.source))  # builds, does not open
        if isinstance(source, FileSource) and not source.path.is_file():
            problems.append(
                VadmonError(
                    f"video file not found (got '{camera.source_redacted}')",
                    f"{where} (cameras.{name}.source)",
                    "fix the path (relative paths start at the working directory)",
                )
            )
    for i, hook in enumerate(config.webhooks):
        try:
            check_url(hook.url, hook.allow_private)
        except UrlUnresolved as exc:  # DNS may be down now: the alert process retries
            print(f"warning: {exc.what}: in {where} (webhooks[{i}].url)", file=sys.stderr)
        except UrlRefused as exc:
            problems.append(VadmonError(exc.what, f"{where} (webhooks[{i}].url)", exc.fix))
    return problems


def run_check(args: argparse.Namespace) -> int:
    from vadmon.monitor import implied_role, preflight

    try:
        config = load_config(args.file)
    except ConfigErrors as exc:
        return _report(exc.problems, args.file)
    try:
        preflight(config, implied_role(config))  # the same checks `vadmon run` makes at start
    except VadmonError as exc:
        return _report([exc], args.file)
    problems = file_problems(config, args.file)
    if problems:
        return _report(problems, args.file)
    cameras = config.cameras
    enabled = config.enabled_cameras()
    print(f"{args.file}: OK — {len(cameras)} camera(s), {len(enabled)} enabled")
    for name, camera in cameras.items():
        state = "enabled" if camera.enabled else "disabled"
        fps = "source fps" if camera.fps is None else f"{camera.fps:g} fps"
        print(f"  camera {name}: {camera.source_redacted} ({camera.source_kind}, {fps}, {state})")
    model = config.model
    detail = model.checkpoint if model.mode == "vadclip" else model.clip_pretrained
    print(f"  model: {model.mode} ({detail}), {model.clip_arch}, device {model.device}")
    for hook in config.webhooks:
        print(f"  webhook {hook.name}: events {', '.join(hook.events)}")
    print(f"  storage: {config.storage.dir}; ipc: {config.ipc_dir()}")
    return 0


def _report(problems: list[VadmonError], where: str) -> int:
    for problem in problems:
        print(f"error: {problem.line()}", file=sys.stderr)
    if len(problems) > 1:
        print(f"{where}: {len(problems)} problems", file=sys.stderr)
    return 2


def run_schema(args: argparse.Namespace) -> int:
    json.dump(config_json_schema(), sys.stdout, indent=2)
    sys.stdout.write("\n")
    return 0
