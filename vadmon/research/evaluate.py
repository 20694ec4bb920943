"""Offline evaluation of a checkpoint on a test list, with the published protocol and metrics.

Each video is scored with the published test protocol (split into ``visual_length`` chunks,
``vadmon.model.predict.score_features``), one crop per video. Frame-level AUC/AP are reported
for both branches (C-Branch ``sigmoid(logits1)``, the published number, and the A-Branch
``1 − P(normal)``), detection mAP@IoU on the class posteriors when the ground truth has class
labels, and a video-level AUC against the list's weak labels (available even without any
temporal ground truth).

Ground truth comes from one of: the UCF temporal annotation, the published ``gt_segment`` /
``gt_label`` arrays (in list order), or the generic segment CSV (``vadmon.research.annotations``). Its
labels are list-label keys (``Abuse``, ``B2``); the checkpoint's ``label_map`` ties them to its
classes. For the UCF file and the arrays, normal videos carry the published marker ``A``, which
for UCF matches no class (the published normal-class AP of 0 is kept for comparability). For
the generic CSV, normal videos are labelled with the checkpoint's normal key, so the normal class
gets a real AP.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from sklearn.metrics import roc_auc_score

from vadmon.errors import VadmonError
from vadmon.model import checkpoint as ckpt_mod
from vadmon.model.config import load_preset
from vadmon.model.predict import score_features
from vadmon.model.vadclip import VadCLIP
from vadmon.research import annotations as ann
from vadmon.research import eval_diagnostics as diag
from vadmon.research import metrics
from vadmon.research import provenance as prov
from vadmon.research import train_data as td
from vadmon.research.list_check import check_list_rows
from vadmon.research.probe import ProbeResult, run_probe

FRAMES = metrics.FRAMES_PER_SNIPPET


@dataclass
class GroundTruthSource:
    """At most one kind of temporal ground truth (all ``None``: weak labels only)."""

    temporal: Path | None = None
    segments_npy: Path | None = None
    labels_npy: Path | None = None
    csv: Path | None = None

    def kind(self) -> str | None:
        given = [k for k in ("temporal", "segments_npy", "csv") if getattr(self, k) is not None]
        if len(given) > 1 or (self.labels_npy is not None and self.segments_npy is None):
            raise VadmonError(
                "give one ground truth: --gt-temporal, --gt-segments with --gt-labels, or --gt-csv"
            )
        if self.segments_npy is not None and self.labels_npy is None:
            raise VadmonError("--gt-segments needs --gt-labels")
        return given[0] if given else None


@dataclass
class VideoResult:
    video: str
    label: str
    coarse: np.ndarray  # [T] C-Branch probability per snippet
    fine: np.ndarray  # [T] 1 − P(normal)
    class_probs: np.ndarray  # [T, C]
    segments: list[tuple[int, int]] = field(default_factory=list)  # GT, frames [s, e)
    segment_labels: list[str] = field(default_factory=list)
    path: Path | None = None  # the feature file scored
    probe: np.ndarray | None = None  # [T] supervised probe probability (``--probe``)

    @property
    def frames(self) -> int:
        return FRAMES * len(self.coarse)

    def events(self, normal: frozenset[str]) -> tuple[list[list[int]], list[str]]:
        """GT segments and labels of events only: a normal video has none (the annotation
        formats give it one normal segment spanning the video, which is not an event)."""
        pairs = [
            (list(s), lab)
            for s, lab in zip(self.segments, self.segment_labels, strict=True)
            if lab not in normal
        ]
        return [s for s, _ in pairs], [lab for _, lab in pairs]


@dataclass
class EvalReport:
    test_list: str
    class_names: list[str]
    gt_classes: list[str]
    gt_kind: str | None
    videos: list[VideoResult]
    video_auc: float | None = None
    coarse: dict[str, float] | None = None
    fine: dict[str, float] | None = None
    map_iou: list[float] = field(default_factory=list)
    map: list[float] = field(default_factory=list)
    seconds: float = 0.0
    checkpoint: str | None = None
    crop: int | None = None
    crop_source: str = ""
    features: dict[str, Any] | None = None  # the test features' origin sidecar
    probe: ProbeResult | None = None
    diagnostics: dict[str, Any] = field(default_factory=dict)  # per_class, shortcuts

    @property
    def normal_marks(self) -> frozenset[str]:
        return frozenset({ann.GT_NORMAL_LABEL, *self.gt_classes[:1]})

    @property
    def map_avg(self) -> float | None:
        return float(np.mean(self.map)) if self.map else None

    def to_dict(self, per_video: bool = True) -> dict[str, Any]:
        out: dict[str, Any] = {
            "checkpoint": self.checkpoint,
            "test_list": self.test_list,
            "videos": len(self.videos),
            "frames": int(sum(v.frames for v in self.videos)),
            "class_names": self.class_names,
            "gt_classes": self.gt_classes,
            "ground_truth": self.gt_kind,
            "video_auc": self.video_auc,
            "coarse": self.coarse,
            "fine": self.fine,
            "map_iou": self.map_iou,
            "map": self.map,
            "map_avg": self.map_avg,
            "crop": self.crop,
            "crop_source": self.crop_source,
            "features": self.features,
            "probe": self.probe.to_dict() if self.probe else None,
            "seconds": round(self.seconds, 3),
            **self.diagnostics,
        }
        if per_video:
            out["per_video"] = [
                {
                    "video": v.video,
                    "label": v.label,
                    "snippets": len(v.coarse),
                    "max_coarse": float(v.coarse.max()),
                    "max_fine": float(v.fine.max()),
                    "segments": v.events(self.normal_marks)[0],
                    "segment_labels": v.events(self.normal_marks)[1],
                }
                for v in self.videos
            ]
        return out


# --------------------------------------------------------------------------- classes


def gt_class_keys(class_names: list[str], label_map: dict[str, str]) -> list[str]:
    """The list-label key of each model class (``normal`` → ``Normal`` or ``A``)."""
    inverse: dict[str, str] = {}
    for key, name in label_map.items():
        inverse.setdefault(name, key)
    missing = [n for n in class_names if n not in inverse]
    if missing:
        raise VadmonError(
            f"the checkpoint's label map has no list label for class {missing[0]!r}",
            fix="pass --preset ucf|xd matching the checkpoint, or retrain with --classes",
        )
    return [inverse[n] for n in class_names]


def check_gt_classes(labels: list[list[str]], keys: list[str], normal_marks: set[str]) -> None:
    """Every ground-truth label must be one of the checkpoint's classes."""
    found = sorted({lab for video in labels for lab in video} - normal_marks)
    unknown = [lab for lab in found if lab not in keys]
    if unknown:
        raise VadmonError(
            f"ground truth has {len(found)} anomaly classes ({', '.join(found)}) but the "
            f"checkpoint has {len(keys) - 1} ({', '.join(keys[1:])}); unknown: "
            f"{', '.join(unknown)}",
            fix="evaluate with the checkpoint trained for this dataset (or the matching --preset)",
        )


# --------------------------------------------------------------------------- scoring


def score_videos(
    model: VadCLIP, videos: list[td.Video], crop: int | None, progress: bool = False
) -> list[VideoResult]:
    model.eval()
    with torch.no_grad():
        text = model.encode_prompts(model.config.class_names)
    results = []
    for v in _maybe_progress(videos, progress):
        path = v.path_for_crop(crop, "--crop")
        feats = td.load_feature_file(path, model.config.visual_width)
        r = score_features(model, feats, text_features=text, where=str(path))
        results.append(
            VideoResult(v.name, v.label, r["coarse"], r["fine"], r["class_probs"], path=path)
        )
    return results


def _maybe_progress(items: list, enabled: bool):
    if enabled:
        from rich.progress import track

        items = track(items, description="scoring", transient=True)
    yield from items


# --------------------------------------------------------------------------- ground truth


def attach_ground_truth(
    results: list[VideoResult], gt: GroundTruthSource, keys: list[str]
) -> str | None:
    """Fill each result's GT segments; returns the kind of GT used (None: weak labels only)."""
    kind = gt.kind()
    if kind is None:
        return None
    names = [r.video for r in results]
    frames = [r.frames for r in results]
    normal_mark = ann.GT_NORMAL_LABEL
    if kind == "segments_npy":
        segments, labels = ann.read_gt_arrays(gt.segments_npy, gt.labels_npy)
        if len(segments) != len(results):
            raise VadmonError(
                f"ground-truth arrays describe {len(segments)} videos, the test list has "
                f"{len(results)}",
                str(gt.segments_npy),
                "the arrays follow the published test list order; use the matching list",
            )
    else:
        if kind == "temporal":
            annots = ann.read_ucf_temporal(gt.temporal)
        else:
            annots = ann.read_segment_csv(gt.csv)
            normal_mark = keys[0]
        segments, labels = ann.gt_in_list_order(names, annots, frames, normal_label=normal_mark)
    check_gt_classes(labels, keys, {ann.GT_NORMAL_LABEL, keys[0], normal_mark})
    for r, segs, labs in zip(results, segments, labels, strict=True):
        r.segments, r.segment_labels = list(segs), list(labs)
    return kind


def _frame_gt(results: list[VideoResult], normal: set[str]) -> np.ndarray:
    segs = [r.segments for r in results]
    labs = [r.segment_labels for r in results]
    return ann.frame_gt_from_arrays(segs, labs, [r.frames for r in results], normal)


# --------------------------------------------------------------------------- metrics


def _video_auc(results: list[VideoResult], normal: list[bool]) -> float | None:
    if len(set(normal)) < 2:
        return None
    scores = [diag.video_score(r.coarse) for r in results]
    return float(roc_auc_score([0 if n else 1 for n in normal], scores))


def compute_metrics(report: EvalReport, normal: list[bool]) -> None:
    results = report.videos
    report.video_auc = _video_auc(results, normal)
    if report.gt_kind is None:
        return
    frame_gt = _frame_gt(results, {ann.GT_NORMAL_LABEL, report.gt_classes[0]})
    if 0 < frame_gt.sum() < len(frame_gt):
        auc, ap = metrics.frame_auc_ap([r.coarse for r in results], frame_gt)
        report.coarse = {"auc": auc, "ap": ap}
        auc, ap = metrics.frame_auc_ap([r.fine for r in results], frame_gt)
        report.fine = {"auc": auc, "ap": ap}
    report.map_iou = list(metrics.DEFAULT_IOUS)
    report.map = metrics.detection_map(
        [r.class_probs for r in results],
        [r.segments for r in results],
        [r.segment_labels for r in results],
        report.gt_classes,
        report.map_iou,
    )


def evaluate_model(
    model: VadCLIP,
    test_list: Path,
    label_map: dict[str, str],
    gt: GroundTruthSource | None = None,
    crop: int | None = None,
    progress: bool = False,
    probe: bool = False,
) -> EvalReport:
    """Score every video of ``test_list`` and compute all metrics the ground truth allows;
    ``probe`` adds the supervised linear probe's AUC on the same features (``research.probe``)."""
    started = time.monotonic()
    names = model.config.class_names
    keys = gt_class_keys(names, label_map)
    videos = td.read_videos(Path(test_list))
    td.check_labels(videos, label_map, names)
    normal = td.is_normal(videos, label_map, names)
    results = score_videos(model, videos, crop, progress)
    kind = attach_ground_truth(results, gt or GroundTruthSource(), keys)
    report = EvalReport(str(test_list), list(names), keys, kind, results, crop=crop)
    compute_metrics(report, normal)
    report.diagnostics = diag.diagnose(report, normal)
    if probe:
        add_probe(report, model.config.visual_width)
    report.seconds = time.monotonic() - started
    return report


def add_probe(report: EvalReport, width: int) -> None:
    """Fit the probe on the scored features with frame labels; its scores join each video."""
    if report.coarse is None:
        raise VadmonError(
            "--probe needs frame ground truth with normal and anomalous frames",
            report.test_list,
            "pass --gt-csv, --gt-temporal or --gt-segments/--gt-labels",
        )
    feats = [td.load_feature_file(r.path, width) for r in report.videos if r.path is not None]
    frame_gt = _frame_gt(report.videos, set(report.normal_marks))
    report.probe, scores = run_probe(feats, frame_gt, report.coarse["auc"])
    for r, sc in zip(report.videos, scores, strict=True):
        r.probe = sc


def evaluate_checkpoint(
    checkpoint: Path,
    test_list: Path,
    gt: GroundTruthSource | None = None,
    preset: str | None = None,
    crop: int | None = None,
    device: str = "auto",
    progress: bool = False,
    probe: bool = False,
) -> EvalReport:
    """``evaluate_model`` on a saved checkpoint; ``preset`` supplies the label map if missing.

    Everything that can be checked without scoring is checked first: every list row (exists,
    loads, width), the crop exists for every video, and the features come from the checkpoint's
    tower and sampling."""
    ck = ckpt_mod.load(checkpoint)
    label_map = dict(ck.label_map)
    if preset is not None:
        label_map = label_map or load_preset(preset).label_map
    crop, crop_source = td.resolve_crop(crop, preset, ck.meta)
    videos = td.read_videos(Path(test_list))
    check_list_rows(Path(test_list), ck.config.visual_width)
    files = [v.path_for_crop(crop, "--crop") for v in videos]
    features = prov.check_checkpoint(ck, files, str(checkpoint))
    try:
        model = ck.build(device)
    except VadmonError as exc:
        raise VadmonError(exc.what, str(checkpoint), exc.fix) from None
    if not label_map:
        raise VadmonError(
            "the checkpoint carries no label map", str(checkpoint), "pass --preset ucf|xd"
        )
    report = evaluate_model(model, test_list, label_map, gt, crop, progress, probe)
    report.checkpoint = str(checkpoint)
    report.crop_source, report.features = crop_source, features
    return report


def summary_lines(report: EvalReport) -> list[str]:
    lines = [f"{len(report.videos)} videos, ground truth: {report.gt_kind or 'video labels only'}"]
    crop = "as listed" if report.crop is None else str(report.crop)
    lines.append(f"scored crop {crop} ({report.crop_source or 'as asked'})")
    if report.checkpoint is not None and report.features is None:
        lines.append(prov.UNCHECKED)
    if report.video_auc is not None:
        lines.append(f"video-level AUC (C-Branch top-k): {report.video_auc:.4f}")
    for name, m in (("coarse (C-Branch)", report.coarse), ("fine (A-Branch)", report.fine)):
        if m is not None:
            lines.append(f"frame {name}: AUC {m['auc']:.4f}  AP {m['ap']:.4f}")
    if report.map:
        cells = "  ".join(
            f"{i:.1f}:{v:.2f}" for i, v in zip(report.map_iou, report.map, strict=True)
        )
        lines.append(f"mAP@IoU {cells}  avg {report.map_avg:.2f}")
    if report.probe is not None:
        pr = report.probe
        lines.append(
            f"supervised linear probe (frame labels, {pr.folds}-fold by video): frame AUC "
            f"{pr.auc:.4f}  AP {pr.ap:.4f}  vs model {report.coarse['auc']:.4f}"
        )
        lines.append(f"  → {pr.verdict()}")
    return lines + diag.lines(report.diagnostics)


def write_report(report: EvalReport, path: Path) -> None:
    from vadmon.atomic import atomic_write_text

    atomic_write_text(Path(path), json.dumps(report.to_dict(), indent=2) + "\n")
