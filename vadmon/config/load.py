"""Loading a config file: YAML with lines → env substitution → defaults merge → validation.

The goal is one error line a user can act on: the file and line, the YAML path, what is
wrong, the value given, and (when we can tell) what was probably meant. A file with several
problems raises one ``ConfigErrors`` that carries them all (``vadmon config check`` prints
every one); its own line is the first. Values are echoed with URL credentials redacted, never
for secret-like keys, and any value substituted from the environment as a secret is scrubbed.
"""

from __future__ import annotations

import copy
import difflib
import os
import types
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from vadmon.config.calibration import apply_calibration
from vadmon.config.models import MAX_CAMERAS, MonitorConfig
from vadmon.config.yamlfile import Located, load_yaml
from vadmon.errors import VadmonError
from vadmon.redact import redact_text, redact_url

SECRET_KEYS = ("secret", "password", "token", "key")


class ConfigErrors(VadmonError):
    """Every problem of one config file; reads as the first, ``problems`` holds them all."""

    def __init__(self, problems: list[VadmonError]) -> None:
        first = problems[0]
        more = len(problems) - 1
        fix = first.fix
        if more:
            fix = (fix + "; " if fix else "") + f"and {more} more: vadmon config check FILE"
        super().__init__(first.what, first.where, fix)
        self.problems = problems


def load_config(path: str | Path, env: Mapping[str, str] | None = None) -> MonitorConfig:
    """Read and validate a YAML config file; any problem is a one-line ``VadmonError``."""
    path = Path(path)
    where = str(path)
    if not path.exists():
        raise VadmonError("config file not found", where, "check the path (see configs/*.yaml)")
    if not path.is_file():
        raise VadmonError("config path is not a file", where, "pass a .yaml file")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise VadmonError("config file is not UTF-8 text", where, "save it as UTF-8") from None
    except OSError as exc:
        raise VadmonError(f"cannot read config file ({exc.strerror})", where) from None
    return apply_calibration(load_config_text(text, where, env), path)


def load_config_text(
    text: str, where: str = "<config>", env: Mapping[str, str] | None = None
) -> MonitorConfig:
    """Validate config ``text``; ``where`` names it in error messages; ``env`` defaults to
    ``os.environ`` (passing a dict keeps tests independent of the real environment)."""
    located = load_yaml(text, where, os.environ if env is None else env)
    if not isinstance(located.data, dict):
        raise VadmonError(
            "config must be a mapping at the top level", f"{where}:1", "start with 'cameras:'"
        )
    _check_camera_count(located, where)
    merge_defaults(located)
    try:
        config = MonitorConfig.model_validate(located.data)
    except ValidationError as exc:
        raise _to_vadmon_error(exc, located, where) from None
    config._secrets = tuple(dict.fromkeys(located.secrets))
    return config


def config_json_schema() -> dict[str, Any]:
    """JSON schema of the config file (titles, descriptions, bounds, defaults)."""
    return MonitorConfig.model_json_schema()


# --------------------------------------------------------------------------- merging


def deep_merge(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """``override`` wins; nested mappings merge key by key; lists are replaced, not joined."""
    merged = copy.deepcopy(dict(base))
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def _check_camera_count(located: Located, where: str) -> None:
    """The camera limit, checked before validating thousands of cameras one by one (slow)."""
    cameras = located.data.get("cameras")
    if isinstance(cameras, dict) and len(cameras) > MAX_CAMERAS:
        line, _ = located.line_of(("cameras",))
        raise VadmonError(
            f"{len(cameras)} cameras; one monitor runs at most {MAX_CAMERAS}",
            f"{where}:{line} (cameras)",
            "split the cameras across monitors, each with its own instance and storage.dir",
        )


def merge_defaults(located: Located) -> None:
    """Merge ``defaults`` into each camera in place and point inherited paths at their line."""
    data = located.data
    defaults = data.get("defaults") or {}
    cameras = data.get("cameras")
    if not isinstance(defaults, dict) or not isinstance(cameras, dict):
        return
    inherited = [(p, v) for p, v in located.lines.items() if p[:1] == ("defaults",) and len(p) > 1]
    for name, camera in cameras.items():
        if camera is None:
            camera = {}
        if not isinstance(camera, dict):
            continue
        cameras[name] = deep_merge(defaults, camera)
        for path, line in inherited:
            target = ("cameras", name, *path[1:])
            located.lines.setdefault(target, line)


# --------------------------------------------------------------------------- errors


def _to_vadmon_error(exc: ValidationError, located: Located, where: str) -> ConfigErrors:
    """One problem per config location: pydantic reports a bad value once per union member
    (``source: str | int``), which is one mistake to the user, so only the first is kept."""
    scrub = located.secrets
    problems: dict[tuple[int, str], VadmonError] = {}
    for err in exc.errors(include_url=False):
        line, what, shown, fix = _describe(err, located)
        problems.setdefault(
            (line, shown),
            VadmonError(
                redact_text(what, scrub), f"{where}:{line} ({shown})", redact_text(fix, scrub)
            ),
        )
    return ConfigErrors([problems[k] for k in sorted(problems, key=lambda k: k[0])])


def _shown_value(path: tuple[str | int, ...], value: Any) -> str:
    """`` (got VALUE)`` for the message, or "" for values that may be secret or are huge."""
    key = str(path[-1]).lower() if path else ""
    if any(word in key for word in SECRET_KEYS) or isinstance(value, dict | list):
        return ""
    if isinstance(value, str):
        text = redact_url(value)
        return f" (got {text[:60] + '…' if len(text) > 60 else text!r})"
    return f" (got {value!r})"


def _describe(err: Mapping[str, Any], located: Located) -> tuple[int, str, str, str]:
    path = _data_path(tuple(err["loc"]), located.data)
    line, shown = located.line_of(path)
    key = str(path[-1]) if path else ""
    kind = err["type"]
    if kind == "extra_forbidden":
        return line, f"unknown key '{key}'", shown, _suggest(path)
    if kind == "missing":
        return line, f"missing required key '{key}'", shown, _field_help(path, "add it")
    message = str(err["msg"])
    for prefix in ("Value error, ", "Assertion failed, "):
        message = message.removeprefix(prefix)
    message = message[:1].lower() + message[1:]
    if kind == "value_error" and _model_at(path) is not None:
        return line, message, shown, ""  # a whole-section check: the message says it all
    return line, message + _shown_value(path, err.get("input")), shown, _field_help(path, "")


def _data_path(loc: tuple[Any, ...], data: Any) -> tuple[str | int, ...]:
    """The part of pydantic's ``loc`` that exists in the data (drops union member tags)."""
    path: list[str | int] = []
    current = data
    for part in loc:
        if _has(current, part):
            current = current[part]
        elif isinstance(current, dict) and isinstance(part, str):
            path.append(part)  # a missing key: name it, then stop
            break
        else:
            break
        path.append(part)
    return tuple(path)


def _has(container: Any, part: Any) -> bool:
    if isinstance(container, dict):
        return part in container
    return isinstance(container, list) and isinstance(part, int) and 0 <= part < len(container)


def _suggest(path: tuple[str | int, ...]) -> str:
    model = _model_at(path[:-1])
    if model is None:
        return "remove it"
    valid = list(model.model_fields)
    close = difflib.get_close_matches(str(path[-1]), valid, n=1)
    hint = f"did you mean '{close[0]}'? " if close else ""
    return f"{hint}valid keys: {', '.join(valid)}"


def _field_help(path: tuple[str | int, ...], fallback: str) -> str:
    model = _model_at(path[:-1]) if path else None
    field = model.model_fields.get(str(path[-1])) if model else None
    if field is not None and field.description:
        return f"{path[-1]}: {field.description}"
    return fallback


def _model_at(path: tuple[str | int, ...]) -> type[BaseModel] | None:
    """The pydantic model describing the mapping at ``path`` (None if not a model)."""
    tp: Any = MonitorConfig
    for part in path:
        tp = _unwrap(tp)
        if isinstance(tp, type) and issubclass(tp, BaseModel):
            field = tp.model_fields.get(str(part))
            if field is None:
                return None
            tp = field.annotation
        elif typing.get_origin(tp) is dict:
            tp = typing.get_args(tp)[1]
        elif typing.get_origin(tp) is list:
            tp = typing.get_args(tp)[0]
        else:
            return None
    tp = _unwrap(tp)
    return tp if isinstance(tp, type) and issubclass(tp, BaseModel) else None


def _unwrap(tp: Any) -> Any:
    """Optional[X] / Union[X, None] / Annotated[X, ...] -> X (first model member wins)."""
    origin = typing.get_origin(tp)
    if origin is typing.Annotated:
        return _unwrap(typing.get_args(tp)[0])
    if origin in (typing.Union, types.UnionType):
        members = [a for a in typing.get_args(tp) if a is not type(None)]
        for member in members:
            inner = _unwrap(member)
            if isinstance(inner, type) and issubclass(inner, BaseModel):
                return inner
        return members[0] if len(members) == 1 else tp
    return tp
