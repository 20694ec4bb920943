"""Config loading: line-numbered errors, ${ENV}, defaults merge, bounds, secrets, shipped files."""

from __future__ import annotations

import argparse
import base64
import json
from pathlib import Path

import pytest

from vadmon.commands import config as config_cmd
from vadmon.config import MonitorConfig, config_json_schema, load_config, load_config_text
from vadmon.errors import VadmonError

REPO = Path(__file__).resolve().parents[1]
GOOD_SECRET = "whsec_" + base64.b64encode(bytes(range(32))).decode()

BASE = """\
defaults:
  fps: 10
  stall_timeout_s: 7
  alerts:
    threshold: 0.6
    smoothing: {kind: median, window: 5}
cameras:
  lobby:
    source: rtsp://admin:${CAM_PASSWORD}@10.0.0.5:554/s1
    alerts:
      cooldown_s: 5
  door:
    source: 0
    fps: 25
model:
  mode: vadclip
  checkpoint: models/vadclip-ucf.pt
"""
ENV = {"CAM_PASSWORD": "p@ss:w%rd/x"}


def load(text: str, env: dict[str, str] | None = None) -> MonitorConfig:
    return load_config_text(text, "configs/x.yaml", ENV if env is None else env)


def error_of(text: str, env: dict[str, str] | None = None) -> VadmonError:
    with pytest.raises(VadmonError) as info:
        load(text, env)
    return info.value


def test_valid_config_loads() -> None:
    config = load(BASE)
    assert set(config.cameras) == {"lobby", "door"}
    assert config.cameras["door"].source == 0
    assert config.cameras["door"].source_kind == "webcam"
    assert config.cameras["lobby"].source_kind == "url"


def test_unknown_key_names_file_line_and_path(tmp_path: Path) -> None:
    path = tmp_path / "x.yaml"
    path.write_text(BASE.replace("    fps: 25\n", "    fpz: 25\n"))
    with pytest.raises(VadmonError) as info:
        load_config(path, ENV)
    line = info.value.line()
    assert f"{path}:14 (cameras.door.fpz)" in line
    assert "unknown key 'fpz'" in line
    assert "did you mean 'fps'" in line


def test_unknown_top_level_and_nested_keys() -> None:
    err = error_of(BASE + "webhookz: []\n")
    assert err.where == "configs/x.yaml:18 (webhookz)"
    err = error_of(BASE.replace("kind: median", "knd: median"))
    assert err.where == "configs/x.yaml:6 (defaults.alerts.smoothing.knd)"


def test_bad_value_reports_line_and_bound() -> None:
    err = error_of(BASE.replace("cooldown_s: 5", "cooldown_s: -1"))
    assert err.where == "configs/x.yaml:11 (cameras.lobby.alerts.cooldown_s)"
    assert "greater than or equal to 0" in err.what and "-1" in err.what


@pytest.mark.parametrize(
    "old, new, path",
    [
        ("fps: 25", "fps: 0", "cameras.door.fps"),
        ("fps: 25", "fps: 1000", "cameras.door.fps"),
        ("threshold: 0.6", "threshold: 1.5", "defaults.alerts.threshold"),
        ("window: 5}", "window: 0}", "defaults.alerts.smoothing.window"),
        ("mode: vadclip", "mode: magic", "model.mode"),
    ],
)
def test_bounds(old: str, new: str, path: str) -> None:
    assert BASE.count(old) == 1
    err = error_of(BASE.replace(old, new))
    assert err.where.endswith(f"({path})")


def test_cross_field_checks() -> None:
    err = error_of(BASE.replace("  checkpoint: models/vadclip-ucf.pt\n", ""))
    assert "checkpoint" in err.what and err.where == "configs/x.yaml:15 (model)"
    err = error_of(BASE.replace("threshold: 0.6", "threshold: 0.6\n    hysteresis: 0.7"))
    assert "hysteresis" in err.what


def test_env_substitution() -> None:
    config = load(BASE)
    # the password is percent-encoded into the URL's user-info (else '@ : / %' split it)
    assert config.cameras["lobby"].source == "rtsp://admin:p%40ss%3Aw%25rd%2Fx@10.0.0.5:554/s1"
    config = load(BASE.replace("fps: 25", "fps: ${DOOR_FPS}"), {**ENV, "DOOR_FPS": "12.5"})
    assert config.cameras["door"].fps == 12.5
    config = load(BASE.replace("models/vadclip-ucf.pt", "$${LITERAL}.pt"))
    assert str(config.model.checkpoint) == "${LITERAL}.pt"


def test_unknown_env_var_is_an_error_with_line() -> None:
    err = error_of(BASE, env={})
    assert "CAM_PASSWORD" in err.what and "not set" in err.what
    assert err.where == "configs/x.yaml:9 (cameras.lobby.source)"


def test_defaults_deep_merged_camera_wins() -> None:
    config = load(BASE)
    lobby, door = config.cameras["lobby"], config.cameras["door"]
    assert lobby.fps == 10 and door.fps == 25  # camera value wins
    assert lobby.stall_timeout_s == door.stall_timeout_s == 7  # inherited
    assert lobby.alerts.threshold == door.alerts.threshold == 0.6  # nested inherit
    assert lobby.alerts.cooldown_s == 5 and door.alerts.cooldown_s == 30  # nested override
    assert lobby.alerts.smoothing.kind == "median" and lobby.alerts.smoothing.window == 5
    assert lobby.preview.fps == 5  # schema default where neither sets it


def test_error_in_inherited_value_points_at_defaults() -> None:
    err = error_of(BASE.replace("stall_timeout_s: 7", "stall_timeout_s: -7"))
    assert err.where == "configs/x.yaml:3 (defaults.stall_timeout_s)"


def test_duplicate_key_and_yaml_syntax() -> None:
    err = error_of(BASE.replace("    fps: 25\n", "    fps: 25\n    fps: 26\n"))
    assert err.where == "configs/x.yaml:15 (cameras.door.fps)" and "duplicate" in err.what
    err = error_of(BASE.replace("  door:\n", "  door\n"))
    assert err.where.startswith("configs/x.yaml:") and "invalid YAML" in err.what


def test_missing_file_and_empty_file(tmp_path: Path) -> None:
    with pytest.raises(VadmonError, match="not found"):
        load_config(tmp_path / "nope.yaml")
    (tmp_path / "empty.yaml").write_text("# nothing\n")
    with pytest.raises(VadmonError, match="empty"):
        load_config(tmp_path / "empty.yaml")


def test_missing_required_key() -> None:
    err = error_of(BASE.replace("    source: 0\n", ""))
    assert "missing required key 'source'" in err.what
    assert err.where == "configs/x.yaml:12 (cameras.door.source)"


def webhook_yaml(secret: str, url: str = "https://hooks.example.com/x", extra: str = "") -> str:
    return BASE + f"webhooks:\n  - name: ops\n    url: {url}\n    secret: ${{HOOK_SECRET}}\n{extra}"


def test_webhook_secret_is_secret_and_valid() -> None:
    config = load(webhook_yaml("x"), {**ENV, "HOOK_SECRET": GOOD_SECRET})
    hook = config.webhooks[0]
    assert hook.signing_key() == bytes(range(32))
    assert GOOD_SECRET not in repr(config) and GOOD_SECRET not in str(hook)


@pytest.mark.parametrize(
    "secret, message",
    [
        ("whsec_" + base64.b64encode(b"k" * 23).decode(), "at least 24"),
        (base64.b64encode(b"k" * 32).decode(), "must start with 'whsec_'"),
        ("whsec_not base64!!", "base64"),
    ],
)
def test_bad_webhook_secret(secret: str, message: str) -> None:
    err = error_of(webhook_yaml(secret), {**ENV, "HOOK_SECRET": secret})
    assert message in err.what
    assert err.where == "configs/x.yaml:21 (webhooks[0].secret)"
    assert secret not in err.line()


def test_private_webhook_needs_opt_in() -> None:
    env = {**ENV, "HOOK_SECRET": GOOD_SECRET}
    err = error_of(webhook_yaml("", url="http://127.0.0.1:9000/h"), env)
    assert "allow_private" in err.what
    config = load(webhook_yaml("", "http://127.0.0.1:9000/h", "    allow_private: true\n"), env)
    assert config.webhooks[0].allow_private


def test_camera_repr_never_shows_password() -> None:
    config = load(BASE)
    for text in (repr(config), str(config), repr(config.cameras), str(config.cameras["lobby"])):
        assert "p@ss" not in text and "w%rd" not in text
        assert "rtsp://***@10.0.0.5:554/s1" in text


def test_error_messages_never_echo_substituted_secrets() -> None:
    text = BASE.replace("source: 0", "source: ${DOOR}")
    err = error_of(text, {**ENV, "DOOR": "ftp://u:hunter2hunter2@cam/x"})
    assert "hunter2" not in err.line()
    assert err.where == "configs/x.yaml:13 (cameras.door.source)"


@pytest.mark.parametrize("name", ["demo", "rtsp-example", "ucf", "xd", "zeroshot"])
def test_shipped_configs_validate(name: str) -> None:
    env = {"CAM_PASSWORD": "p@ss:w%rd/x", "WEBHOOK_SECRET": GOOD_SECRET}
    config = load_config(REPO / "configs" / f"{name}.yaml", env)
    assert config.cameras
    if name in ("ucf", "xd"):
        assert str(config.model.checkpoint) == f"models/vadclip-{name}.pt"


def test_all_config_files_are_covered() -> None:
    shipped = {p.stem for p in (REPO / "configs").glob("*.yaml")}
    # split-camera-host / split-gpu-host: run against each other in tests/test_split_configs.py
    assert shipped == {
        "demo",
        "rtsp-example",
        "ucf",
        "xd",
        "zeroshot",
        "split-camera-host",
        "split-gpu-host",
    }


def test_rtsp_example_merges_and_redacts(
    capsys: pytest.CaptureFixture[str], monkeypatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("CAM_PASSWORD", "p@ss:w%rd/x")
    monkeypatch.setenv("WEBHOOK_SECRET", GOOD_SECRET)
    monkeypatch.chdir(tmp_path)  # the config's relative checkpoint path must exist
    args = argparse.Namespace(file=str(REPO / "configs" / "rtsp-example.yaml"))
    assert config_cmd.run_check(args) == 2
    assert "checkpoint file not found (got 'models/vadclip-ucf.pt')" in capsys.readouterr().err
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "vadclip-ucf.pt").write_bytes(b"x")
    assert config_cmd.run_check(args) == 0
    out = capsys.readouterr().out
    assert "rtsp://***@192.168.1.65" in out and "p@ss" not in out and GOOD_SECRET not in out
    config = load_config(args.file)
    assert config.cameras["parking"].stall_timeout_s == 20
    assert config.cameras["entrance"].stall_timeout_s == 10
    assert config.cameras["parking"].alerts.threshold == 0.7
    assert config.cameras["entrance"].alerts.smoothing.kind == "median"


def test_schema_documents_fields(capsys: pytest.CaptureFixture[str]) -> None:
    schema = config_json_schema()
    camera = schema["$defs"]["CameraConfig"]
    assert camera["additionalProperties"] is False
    assert camera["properties"]["stall_timeout_s"]["default"] == 10.0
    assert "description" in camera["properties"]["source"]
    assert config_cmd.run_schema(argparse.Namespace()) == 0
    assert json.loads(capsys.readouterr().out) == schema


def test_cli_check_exit_codes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from vadmon import cli

    # only this command: the dispatcher itself is what is under test
    monkeypatch.setattr(cli, "COMMANDS", ["vadmon.commands.config"])
    path = tmp_path / "bad.yaml"
    path.write_text(BASE.replace("fps: 25", "fpz: 25"))
    monkeypatch.setenv("CAM_PASSWORD", "p@ss:w%rd/x")
    assert cli.main(["config", "check", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"{path}:14 (cameras.door.fpz)" in err
    assert "Traceback" not in err
    path.write_text(BASE)
    monkeypatch.chdir(tmp_path)  # where the relative checkpoint path points
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "vadclip-ucf.pt").write_bytes(b"x")
    assert cli.main(["config", "check", str(path)]) == 0
    assert "rtsp://***@10.0.0.5" in capsys.readouterr().out
