"""What a training run is asked to do (``TrainOptions``), the hyper-parameters it resolves from
the preset and the command line (``Hyper``), and what it reports back (``TrainResult``, the
line printed per epoch, the progress bar).

Kept apart from the training loop (``vadmon.research.train``) so the command line can be
checked against the options, and read, without the loop.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vadmon.errors import VadmonError

HYPER_KEYS = (
    "epochs",
    "lr",
    "milestones",
    "gamma",
    "seed",
    "batch_size",
    "batch_normal",
    "batch_anomaly",
    "text_loss_weight",
)


@dataclass
class Hyper:
    """Resolved training hyper-parameters (preset values, then command-line overrides)."""

    epochs: int
    lr: float
    milestones: list[int]
    gamma: float
    seed: int
    batch_size: int
    batch_normal: int
    batch_anomaly: int
    text_loss_weight: float
    weight_decay: float = 0.01
    val_fraction: float = 0.1
    val_crop: int | None = None


@dataclass
class TrainOptions:
    """Everything ``vadmon train`` accepts; ``None`` means "the preset's value"."""

    train_list: Path
    output: Path
    work_dir: Path
    preset: str = "ucf"
    checkpoint_init: Path | None = None
    clip_arch: str | None = None  # None: the features' tower (sidecar), else ViT-B-16
    clip_pretrained: str | None = None  # None: the features' weights, else openai; "" random
    classes: list[tuple[str, str]] | None = None  # (list label, prompt text); normal first
    visual_length: int | None = None
    attn_window: int | None = None
    overrides: dict[str, Any] = field(default_factory=dict)  # HYPER_KEYS → value
    weight_decay: float = 0.01
    val_fraction: float = 0.1
    val_crop: int | None = None
    test_list: Path | None = None
    test_gt: Any = None  # vadmon.research.evaluate.GroundTruthSource
    device: str = "cpu"
    threads: int | None = None  # intra-op threads (None: usable cores less the loader's)
    min_steps: int = 8  # shrink batches so an epoch has at least this many steps (0: never)
    resume: bool = False
    stop_after: int | None = None
    progress: bool = False
    log: Callable[[str], None] = print


@dataclass
class TrainResult:
    finished: bool
    epochs_done: int
    best_epoch: int
    validation: dict[str, float]
    history: list[dict[str, Any]]
    output: Path | None
    test: dict[str, Any] | None = None


def resolve_hyper(preset_train: dict[str, Any], opts: TrainOptions) -> Hyper:
    values = {k: preset_train.get(k) for k in HYPER_KEYS}
    values.update({k: v for k, v in opts.overrides.items() if v is not None})
    missing = [k for k, v in values.items() if v is None]
    if missing:
        raise VadmonError(f"no value for {missing[0]!r}", f"preset {opts.preset}")
    hyper = Hyper(
        epochs=int(values["epochs"]),
        lr=float(values["lr"]),
        milestones=[int(m) for m in values["milestones"]],
        gamma=float(values["gamma"]),
        seed=int(values["seed"]),
        batch_size=int(values["batch_size"]),
        batch_normal=int(values["batch_normal"]),
        batch_anomaly=int(values["batch_anomaly"]),
        text_loss_weight=float(values["text_loss_weight"]),
        weight_decay=opts.weight_decay,
        val_fraction=opts.val_fraction,
        val_crop=opts.val_crop if opts.val_crop is not None else preset_train.get("test_crop"),
    )
    if hyper.epochs < 1 or hyper.lr <= 0 or hyper.batch_size < 1:
        raise VadmonError("epochs, lr and batch size must be positive", "command line")
    if (hyper.batch_normal > 0) != (hyper.batch_anomaly > 0):
        raise VadmonError(
            "--batch-normal and --batch-anomaly must both be > 0 (paired) or both 0",
            "command line",
        )
    return hyper


# --------------------------------------------------------------------------- reporting


def progress_bar(enabled: bool):  # -> rich.progress.Progress | None
    if not enabled:
        return None
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[losses]}"),
        transient=True,
    )


def epoch_line(rec: dict[str, Any], epochs: int) -> str:
    """One history record as the line ``vadmon train`` prints after each epoch."""
    loss = rec["loss"]
    line = (
        f"epoch {rec['epoch']}/{epochs}  loss {loss['total']:.4f} (bce {loss['bce']:.4f} "
        f"align {loss['align']:.4f} text {loss['text']:.5f})  lr {rec['lr']:.2e}"
    )
    if rec["validation"]:
        v = rec["validation"]
        line += f"  val AUC {v['video_auc']:.4f} bce {v['bce']:.4f}"
    return line + ("  *best" if rec["best"] else "") + f"  {rec['seconds']:.1f}s"
