"""Per-camera thresholds chosen by ``vadmon calibrate``, applied when the config is loaded.

The file lives beside the config (``<name>.calibration.yaml``) or where ``calibration_file``
says, so a calibration never rewrites the user's own YAML (comments, ordering, ``${ENV}``). Only
thresholds of cameras that exist are applied; anything else in the file is one clear error.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import yaml

from vadmon.atomic import atomic_write_text
from vadmon.config.models import MonitorConfig
from vadmon.errors import VadmonError


def calibration_path(cfg: MonitorConfig, config_path: Path) -> Path:
    if cfg.calibration_file is not None:
        return Path(cfg.calibration_file)
    return config_path.with_name(f"{config_path.stem}.calibration.yaml")


def read_calibration(path: Path) -> dict[str, float]:
    """``{camera: threshold}`` from a calibration file; one-line errors for anything else."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise VadmonError(
            f"cannot read calibration file ({exc})", str(path), "re-run vadmon calibrate"
        ) from None
    cams = data.get("cameras") if isinstance(data, dict) else None
    if not isinstance(cams, dict):
        raise VadmonError("calibration file needs a 'cameras:' mapping", str(path))
    out: dict[str, float] = {}
    for name, entry in cams.items():
        value = entry.get("threshold") if isinstance(entry, dict) else None
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value <= 1:
            raise VadmonError(
                f"camera {name!r}: threshold must be a number in (0, 1]",
                str(path),
                "re-run calibrate",
            )
        out[str(name)] = float(value)
    return out


def apply_calibration(cfg: MonitorConfig, config_path: Path) -> MonitorConfig:
    """Set calibrated thresholds on the cameras they name (hysteresis clamped to fit)."""
    path = calibration_path(cfg, config_path)
    if not path.is_file():
        if cfg.calibration_file is not None:
            raise VadmonError(
                "calibration file not found", str(path), "run vadmon calibrate or remove the key"
            )
        return cfg
    for name, threshold in read_calibration(path).items():
        cam = cfg.cameras.get(name)
        if cam is None:
            continue
        cam.alerts.threshold = threshold
        cam.alerts.hysteresis = min(cam.alerts.hysteresis, threshold)
    return cfg


def write_calibration(path: Path, camera: str, entry: dict[str, Any]) -> None:
    """Add or replace one camera's entry, keeping the others (atomic write)."""
    data: dict[str, Any] = {"cameras": {}}
    if path.is_file():
        loaded = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        if isinstance(loaded, dict) and isinstance(loaded.get("cameras"), dict):
            data = loaded
    data["cameras"][camera] = dict(entry, calibrated_at=time.strftime("%Y-%m-%dT%H:%M:%S%z"))
    header = "# written by `vadmon calibrate`; read when the config beside it is loaded\n"
    atomic_write_text(path, header + yaml.safe_dump(data, sort_keys=True))
