"""The training run's on-disk state: one atomic file per work dir, rewritten every epoch.

Everything a resumed run needs lives in a single file (``last.pt``): current and best adapter
weights, optimizer and scheduler state, the torch RNG, the epoch history and a fingerprint of the
settings. One file means one atomic rename, so a kill at any moment leaves either the previous
epoch's state or the new one, never a mix (the best weights can not refer to an epoch the
history does not know). CLIP is frozen and rebuilt from its source, so it is not stored here;
its checksum is, so a resume with different CLIP weights is refused.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import torch

from vadmon.atomic import atomic_path, atomic_write_text
from vadmon.errors import VadmonError

STATE_FORMAT = "vadmon-train-state"
STATE_VERSION = 1
STATE_FILE = "last.pt"
HISTORY_FILE = "history.json"


def atomic_torch_save(obj: Any, path: Path) -> None:
    """Write to a temporary file in the same directory, fsync, rename over ``path``."""
    with atomic_path(path) as tmp:
        torch.save(obj, tmp)


def remove_stale_temporaries(work_dir: Path) -> None:
    """Temporaries left by a kill during a write are never valid state."""
    if work_dir.is_dir():
        for p in work_dir.glob(".*.tmp"):
            p.unlink(missing_ok=True)


def file_digest(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()[:16]


def tensor_checksum(tensors: dict[str, torch.Tensor], digits: int = 10) -> str:
    """Cheap content hash of frozen weights (sum and sum of squares per tensor, in fp64, to
    ``digits`` significant digits)."""
    h = hashlib.sha256()
    for key in sorted(tensors):
        t = tensors[key].detach().double().cpu()
        h.update(key.encode())
        h.update(f"{t.sum().item():.{digits}e}:{(t * t).sum().item():.{digits}e}".encode())
    return h.hexdigest()[:16]


def save_state(work_dir: Path, state: dict[str, Any]) -> None:
    payload = {"format": STATE_FORMAT, "version": STATE_VERSION, **state}
    atomic_torch_save(payload, work_dir / STATE_FILE)
    history = json.dumps(state.get("history", []), indent=2)
    atomic_write_text(work_dir / HISTORY_FILE, history + "\n")


def load_state(work_dir: Path) -> dict[str, Any] | None:
    path = work_dir / STATE_FILE
    if not path.is_file():
        return None
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # corrupt state must not be silently replaced
        raise VadmonError(
            f"cannot read training state ({type(exc).__name__})",
            str(path),
            "delete the work dir to start over",
        ) from None
    if not isinstance(obj, dict) or obj.get("format") != STATE_FORMAT:
        raise VadmonError("not a vadmon training state", str(path))
    if obj.get("version") != STATE_VERSION:
        raise VadmonError(f"unsupported training state version {obj.get('version')!r}", str(path))
    return obj


def check_fingerprint(saved: dict[str, Any], current: dict[str, Any], where: str) -> None:
    """Resuming with other settings would silently produce a model nobody asked for."""
    for key in sorted(set(saved) | set(current)):
        if saved.get(key) != current.get(key):
            raise VadmonError(
                f"cannot resume: setting {key!r} differs from the interrupted run "
                f"({saved.get(key)!r} → {current.get(key)!r})",
                where,
                "resume with the original settings, or use a new --work-dir",
            )
