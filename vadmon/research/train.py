"""Weakly supervised VadCLIP training (video-level labels only), resumable and seeded.

Follows the published recipe (AdamW, MultiStepLR ×gamma per epoch, top-k MIL losses, paired
normal/anomalous batches for UCF, one shuffled loader for XD) with one deliberate change: the
published code picks the epoch with the best *test* AUC. Here the test set is never looked at
during training. A validation split of the training list is held out by video, and the epoch
with the best validation score is kept.

The training lists carry video labels only, so the validation score is a video-level AUC
(``vadmon.research.validation``); with ``val_fraction = 0`` the last epoch is kept.
"""

from __future__ import annotations

import os
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import torch

from vadmon.errors import VadmonError
from vadmon.model import checkpoint as ckpt_mod
from vadmon.model.adapter import window_mask
from vadmon.model.clip_factory import create_clip, resolve_device
from vadmon.model.config import VadClipConfig, load_preset
from vadmon.model.losses import total_loss
from vadmon.model.vadclip import VadCLIP
from vadmon.research import provenance as prov
from vadmon.research import train_checks as tc
from vadmon.research import train_data as td
from vadmon.research import train_state as ts
from vadmon.research.list_check import check_list_rows
from vadmon.research.prefetch import prefetch
from vadmon.research.train_health import HealthWatch
from vadmon.research.train_options import (
    Hyper,
    TrainOptions,
    TrainResult,
    epoch_line,
    progress_bar,
    resolve_hyper,
)
from vadmon.research.validation import better, validate

# --------------------------------------------------------------------------- setup


def make_deterministic(seed: int, device: torch.device) -> None:
    """Same inputs, same weights: seeded RNG and deterministic kernels where torch has them."""
    if device.type == "cuda":
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.backends.cudnn.benchmark = False
    torch.use_deterministic_algorithms(True, warn_only=True)
    torch.manual_seed(seed)


def _class_overrides(opts: TrainOptions) -> tuple[list[str] | None, dict[str, str] | None]:
    if not opts.classes:
        return None, None
    if len(opts.classes) < 2:
        raise VadmonError("--classes needs the normal class and at least one anomaly class")
    return [prompt for _, prompt in opts.classes], {key: prompt for key, prompt in opts.classes}


def build_model(opts: TrainOptions) -> tuple[VadCLIP, dict[str, str]]:
    """Model (seeded init or ``checkpoint_init``) and the label map for the list CSV."""
    preset = load_preset(opts.preset)
    names, label_map = _class_overrides(opts)
    if opts.checkpoint_init is not None:
        init = ckpt_mod.load(opts.checkpoint_init)
        if opts.visual_length and opts.visual_length != init.config.visual_length:
            raise VadmonError(
                f"--visual-length {opts.visual_length} differs from the initial checkpoint's "
                f"{init.config.visual_length}",
                str(opts.checkpoint_init),
                "drop --visual-length when starting from a checkpoint",
            )
        model = init.build("cpu")
        if names or opts.attn_window:
            model.config = model.config.replace(class_names=names, attn_window=opts.attn_window)
            model.attn_window = model.config.attn_window
            model.attn_mask = window_mask(model.config.visual_length, model.config.attn_window)
        return model, label_map or init.label_map or preset.label_map
    arch = opts.clip_arch or tc.DEFAULT_ARCH
    clip = create_clip(arch, opts.clip_pretrained or None)
    width = prov.embed_width(clip)
    length = opts.visual_length or int(preset.model.get("visual_length", 256))
    window = opts.attn_window or min(int(preset.model.get("attn_window", 8)), length)
    config: VadClipConfig = preset.model_config(
        visual_width=width,
        visual_length=length,
        attn_window=window,
        clip_arch=arch,
        class_names=names,
    )
    return VadCLIP(config, clip), label_map or preset.label_map


# --------------------------------------------------------------------------- the run


@dataclass
class _Run:
    opts: TrainOptions
    hyper: Hyper
    model: VadCLIP
    label_map: dict[str, str]
    device: torch.device
    samples: list[td.Sample]
    val_videos: list[td.Video]
    val_normal: list[bool]
    split: dict[str, Any]
    fingerprint: dict[str, Any]
    origin: prov.FeatureOrigin | None
    clip_checksum: str
    health: HealthWatch | None = None


def _prepare(opts: TrainOptions) -> _Run:
    """Everything checked and built before the first step: a mistake stops here, in one line."""
    preset = load_preset(opts.preset)
    hyper = resolve_hyper(preset.train, opts)
    device = resolve_device(opts.device)
    videos = td.read_videos(opts.train_list)
    rows = check_list_rows(opts.train_list)
    if opts.test_list is not None:
        check_list_rows(opts.test_list, rows.width)
    origin = tc.features_origin(videos, opts.test_list, hyper.val_crop)
    if origin is None:
        opts.log(prov.UNCHECKED)
    if opts.checkpoint_init is None:
        arch, pretrained = tc.resolve_tower(opts.clip_arch, opts.clip_pretrained, origin)
        opts = replace(opts, clip_arch=arch, clip_pretrained=pretrained)
    make_deterministic(hyper.seed, device)
    model, label_map = build_model(opts)
    clip_sum = prov.clip_checksum(model.clipmodel)
    fix = "train with the features' tower (omit --clip-arch/--clip-pretrained) or re-extract"
    width = model.config.visual_width
    where = str(opts.checkpoint_init or opts.train_list)
    prov.check_tower(
        origin, arch=model.config.clip_arch, width=width, checksum=clip_sum, where=where, fix=fix
    )
    if rows.width != width:
        raise VadmonError(
            f"features are {rows.width}-wide but the model's CLIP embeds {width}",
            str(opts.train_list),
            fix,
        )
    names = model.config.class_names
    td.check_labels(videos, label_map, names)
    normal = td.is_normal(videos, label_map, names)
    train_v, val_v = td.split_by_video(videos, normal, hyper.val_fraction, hyper.seed)
    flags = dict(zip((v.name for v in videos), normal, strict=True))
    val_normal = [flags[v.name] for v in val_v]
    if val_v and len(set(val_normal)) < 2:
        raise VadmonError(
            "the validation split needs normal and anomalous videos (a class has < 2 videos)",
            str(opts.train_list),
            "add videos, or pass --val-fraction 0 to keep the last epoch",
        )
    tc.check_crop_files(val_v, hyper.val_crop, "--val-crop")
    train_normal = [flags[v.name] for v in train_v]
    n_normal = sum(normal)
    for warning in (
        tc.length_warning(train_v, train_normal, rows.snippets),
        tc.validation_warning(n_normal, len(videos) - n_normal, val_normal),
    ):
        if warning:
            opts.log(warning)
    samples = td.samples_of(train_v, train_normal)
    plan = tc.scale_batches(
        samples, hyper.batch_size, hyper.batch_normal, hyper.batch_anomaly, opts.min_steps
    )
    if plan.note:
        opts.log(plan.note)
    hyper = replace(
        hyper,
        batch_size=plan.batch_size,
        batch_normal=plan.batch_normal,
        batch_anomaly=plan.batch_anomaly,
    )
    split = {
        "train_videos": len(train_v),
        "train_samples": len(samples),
        "val_videos": [v.name for v in val_v],
    }
    frozen = {k: v for k, v in model.state_dict().items() if k.startswith("clipmodel.")}
    fingerprint = {
        "train_list": str(Path(opts.train_list).resolve()),
        "train_list_sha": ts.file_digest(Path(opts.train_list)),
        "hyper": {k: v for k, v in asdict(hyper).items() if k != "epochs"},
        "config": model.config.to_dict(),
        "label_map": dict(label_map),
        "clip_checksum": ts.tensor_checksum(frozen),
        "init": str(opts.checkpoint_init) if opts.checkpoint_init else None,
    }
    model.to(device)
    return _Run(opts, hyper, model, label_map, device, samples, val_v, val_normal, split,
                fingerprint, origin, clip_sum)  # fmt: skip


def _optimizer(run: _Run) -> tuple[torch.optim.Optimizer, torch.optim.lr_scheduler.LRScheduler]:
    params = [p for p in run.model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=run.hyper.lr, weight_decay=run.hyper.weight_decay)
    sched = torch.optim.lr_scheduler.MultiStepLR(opt, run.hyper.milestones, run.hyper.gamma)
    return opt, sched


def _restore(run: _Run, opt, sched) -> tuple[int, list[dict[str, Any]], dict[str, Any] | None]:
    """(epochs done, history, best) from the work dir, or a fresh start."""
    work = Path(run.opts.work_dir)
    ts.remove_stale_temporaries(work)
    state = ts.load_state(work)
    if state is None:
        if run.opts.resume:
            run.opts.log(f"no saved state in {work}: starting at epoch 1")
        return 0, [], None
    if not run.opts.resume:
        raise VadmonError(
            f"work dir already holds a run (epoch {state['epoch']} done)",
            str(work),
            "pass --resume to continue it, or choose another --work-dir",
        )
    ts.check_fingerprint(state["fingerprint"], run.fingerprint, str(work / ts.STATE_FILE))
    run.model.load_state_dict(state["adapter"], strict=False)
    opt.load_state_dict(state["optimizer"])
    sched.load_state_dict(state["scheduler"])
    torch.set_rng_state(state["rng"]["torch"])
    if run.device.type == "cuda" and state["rng"].get("cuda") is not None:
        torch.cuda.set_rng_state(state["rng"]["cuda"], run.device)
    run.opts.log(f"resuming {work} after epoch {state['epoch']}")
    return int(state["epoch"]), list(state["history"]), state["best"]


def _adapter_cpu(model: VadCLIP) -> dict[str, torch.Tensor]:
    return {k: v.detach().cpu().clone() for k, v in model.adapter_state_dict().items()}


def _train_epoch(run: _Run, epoch: int, opt, progress) -> dict[str, float]:
    h, cfg = run.hyper, run.model.config
    batches = td.epoch_batches(
        run.samples, epoch, h.seed, h.batch_size, h.batch_normal, h.batch_anomaly
    )
    if not batches:
        raise VadmonError("no training batch could be formed", str(run.opts.train_list))
    sums: dict[str, float] = {"total": 0.0, "bce": 0.0, "align": 0.0, "text": 0.0}
    task = progress.add_task(f"epoch {epoch}/{h.epochs}", total=len(batches), losses="") \
        if progress else None  # fmt: skip
    run.model.train()
    loaded = td.iter_batches(
        run.samples, batches, cfg.visual_length, cfg.visual_width, run.label_map, cfg.class_names
    )
    for step, batch in enumerate(prefetch(loaded, depth=2), start=1):
        out = run.model(batch.visual.to(run.device), batch.lengths, class_names=cfg.class_names)
        terms = total_loss(
            out.logits1,
            out.logits2,
            out.text_features,
            batch.labels.to(run.device),
            batch.lengths,
            h.text_loss_weight,
        )
        values = {k: float(terms[k].detach()) for k in sums}
        if run.health is not None:  # before the step: a NaN must not reach the weights
            run.health.losses(values, epoch, step)
            run.health.scores(out.logits1, batch.lengths, batch.labels, epoch)
        opt.zero_grad(set_to_none=True)
        terms["total"].backward()
        opt.step()
        for k in sums:
            sums[k] += values[k]
        if task is not None:
            text = "  ".join(f"{k} {v / step:.4f}" for k, v in sums.items())
            progress.update(task, advance=1, losses=text)
    if task is not None:
        progress.remove_task(task)
    return {k: v / len(batches) for k, v in sums.items()}


def train(opts: TrainOptions) -> TrainResult:
    """Train (or resume) and write the final self-describing checkpoint to ``opts.output``."""
    with tc.Threads(tc.training_threads(opts.threads)) as threads:
        return _train(opts, threads)


def _train(opts: TrainOptions, threads: int) -> TrainResult:
    run = _prepare(opts)
    opt, sched = _optimizer(run)
    done, history, best = _restore(run, opt, sched)
    h = run.hyper
    run.health = HealthWatch(h.lr, str(run.opts.work_dir))
    steps = len(
        td.epoch_batches(run.samples, 1, h.seed, h.batch_size, h.batch_normal, h.batch_anomaly)
    )
    opts.log(
        f"training on {run.split['train_videos']} videos ({len(run.samples)} samples, "
        f"{steps} steps per epoch), validating on {len(run.val_videos)} held-out videos, "
        f"device {run.device}, {threads} thread{'s' if threads > 1 else ''}"
    )
    progress = progress_bar(opts.progress)
    if progress is not None:
        progress.start()
    try:
        for epoch in range(done + 1, h.epochs + 1):
            if opts.stop_after is not None and epoch > opts.stop_after:
                break
            started = time.monotonic()
            lr = opt.param_groups[0]["lr"]
            loss = _train_epoch(run, epoch, opt, progress)
            sched.step()
            val = (
                validate(run.model, run.val_videos, run.val_normal, h.val_crop)
                if (run.val_videos)
                else {}
            )
            improved = better(val, best)
            if improved:
                best = {"epoch": epoch, "validation": val, "adapter": _adapter_cpu(run.model)}
            rec = {
                "epoch": epoch,
                "lr": lr,
                "loss": loss,
                "validation": val,
                "best": improved,
                "seconds": round(time.monotonic() - started, 3),
            }
            history.append(rec)
            _save(run, epoch, opt, sched, history, best)
            done = epoch
            opts.log(epoch_line(rec, h.epochs))
    finally:
        if progress is not None:
            progress.stop()
    if done < h.epochs:
        opts.log(f"stopped after epoch {done}/{h.epochs}; continue with --resume")
        return TrainResult(False, done, best["epoch"] if best else 0, {}, history, None)
    return _finish(run, history, best)


def _save(run: _Run, epoch: int, opt, sched, history, best) -> None:
    rng = {"torch": torch.get_rng_state()}
    if run.device.type == "cuda":
        rng["cuda"] = torch.cuda.get_rng_state(run.device)
    ts.save_state(
        Path(run.opts.work_dir),
        {
            "epoch": epoch,
            "fingerprint": run.fingerprint,
            "adapter": _adapter_cpu(run.model),
            "optimizer": opt.state_dict(),
            "scheduler": sched.state_dict(),
            "rng": rng,
            "history": history,
            "best": best,
        },
    )


def _finish(run: _Run, history: list[dict[str, Any]], best: dict[str, Any]) -> TrainResult:
    model = run.model
    model.load_state_dict(best["adapter"], strict=False)
    meta: dict[str, Any] = {
        "trained_by": "vadmon train",
        "preset": run.opts.preset,
        "train_list": str(Path(run.opts.train_list).resolve()),
        "hyper": asdict(run.hyper),
        "best_epoch": best["epoch"],
        "validation": best["validation"],
        "selection": "video-level AUC of the top-k mean C-Branch score on held-out videos"
        if best["validation"]
        else "last epoch (no validation split)",
        "split": run.split,
        "history": history,
        "clip_checksum": run.clip_checksum,
        "features": run.origin.to_dict() if run.origin else None,
    }
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    final = ckpt_mod.Checkpoint(model.config, state, dict(run.label_map), meta)
    ckpt_mod.save(final, run.opts.output)
    run.opts.log(
        f"best epoch {best['epoch']}"
        + (f" (val AUC {best['validation']['video_auc']:.4f})" if best["validation"] else "")
        + f" → {run.opts.output}"
    )
    test = None
    if run.opts.test_list is not None:
        from vadmon.research.evaluate import evaluate_model, summary_lines

        report = evaluate_model(
            model, run.opts.test_list, run.label_map, gt=run.opts.test_gt, crop=run.hyper.val_crop
        )
        test = report.to_dict(per_video=False)
        for line in summary_lines(report):
            run.opts.log("test: " + line)
        final.meta["test"] = test
        ckpt_mod.save(final, run.opts.output)
    val = best["validation"]
    return TrainResult(True, len(history), best["epoch"], val, history, run.opts.output, test)
