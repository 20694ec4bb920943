"""``vadmon eval --causal``: the test set replayed as the live monitor would score it.

Offline (the paper's protocol) scores whole ``visual_length`` chunks and so sees the future; the
monitor is causal: ``VadClipStreamScorer`` scores snippet t from the block-aligned sliding window
ending at t + ``lookahead``. Here each test video's features go, snippet by snippet, through
that same class (``vadmon.inference.scores``: window, lookahead, block alignment, end-of-stream
flush) built with the window and gap settings of a monitor config, so the numbers are the
monitor's: frame AUC/AP and mAP@IoU per lookahead next to offline, and time to detect
(``causal_detect``) per annotated event. Scoring precision is fp32 (a bf16 adapter differs by
bf16 rounding; ``vadmon bench lookahead`` measures that).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from vadmon.alerts.event import EventSettings
from vadmon.errors import VadmonError
from vadmon.inference.provisional import EarlyStreamScorer
from vadmon.inference.scores import Entry, VadClipStreamScorer
from vadmon.model.vadclip import VadCLIP
from vadmon.research import causal_detect as cd
from vadmon.research import causal_provisional as cp
from vadmon.research import metrics
from vadmon.research import train_data as td
from vadmon.research.evaluate import EvalReport, VideoResult, _frame_gt

DEFAULT_LOOKAHEADS = (0, 1, 2, 4, 8)


@dataclass(frozen=True)
class CausalSetup:
    """The monitor settings a replay uses (from a config, or the schema's defaults)."""

    window: int
    max_gap: int
    rules: EventSettings
    fps: float
    source: str  # the config file and camera, or "defaults"
    provisional: float | None = None  # alerts.provisional.threshold (None: rules.threshold)

    @property
    def snippet_s(self) -> float:
        return metrics.FRAMES_PER_SNIPPET / self.fps


def setup_from(config: Path | None, camera: str | None, fps: float) -> CausalSetup:
    """Window and gap rules of ``config``'s model section, alert rules of one of its cameras
    (``camera``, else the first enabled one); without a config, the schema's defaults."""
    from vadmon.config.camera import AlertsConfig
    from vadmon.config.models import ModelConfig
    from vadmon.settings import event_settings

    if fps <= 0:
        raise VadmonError(f"--fps must be > 0, got {fps}", "command line")
    if config is None:
        fields = ModelConfig.model_fields
        rules = event_settings(AlertsConfig())
        window, gap = fields["window"].default, fields["max_gap"].default
        return CausalSetup(window, gap, rules, fps, "config defaults")
    from vadmon.config.load import load_config

    cfg = load_config(config)
    cams = cfg.enabled_cameras()
    name = camera or next(iter(cams), None)
    if name not in cams:
        raise VadmonError(
            f"camera {name!r} is not an enabled camera of the config", str(config),
            f"pass --camera one of {sorted(cams)}",
        )  # fmt: skip
    rules = event_settings(cams[name].alerts)
    early = cams[name].alerts.provisional.threshold
    source = f"{config} camera {name}"
    return CausalSetup(cfg.model.window, cfg.model.max_gap, rules, fps, source, early)


def monitor_scorer(model: VadCLIP, setup: CausalSetup, lookahead: int) -> EarlyStreamScorer:
    """The scorer the inference process builds (``inference.build``) for this model and
    settings, at fp32 and with the checkpoint's classes."""
    return EarlyStreamScorer(model, None, setup.window, lookahead=lookahead,
                             max_gap=setup.max_gap)  # fmt: skip


def replay(
    scorer: VadClipStreamScorer, name: str, feats: np.ndarray, steps: list | None = None
) -> tuple[dict, list[int]]:
    """One video through the monitor's scorer: per-snippet outputs and the lookahead each had;
    with ``steps``, also what each step published, provisional scores included."""
    scorer.reset(name)
    if steps is not None and isinstance(scorer, EarlyStreamScorer):
        scorer.early_cameras = frozenset({name})
    got: dict[int, Any] = {}
    for i, row in enumerate(feats):
        finals = scorer.feed([Entry(name, i, torch.from_numpy(row), i, i + 1.0)])
        got.update((s.index, s) for s in finals)
        if steps is not None:
            steps.append(cp.Step(i, finals, scorer.take_early()))
    tail = scorer.flush(name)
    got.update((s.index, s) for s in tail)
    if steps is not None:
        steps.append(cp.Step(len(feats) - 1, tail, []))
    scored = [got[i] for i in range(len(feats))]
    out = {
        "coarse": np.array([s.score for s in scored]),
        "fine": np.array([s.fine for s in scored]),
        "class_probs": np.array([s.class_probs for s in scored]),
    }
    return out, [s.lookahead for s in scored]


@dataclass
class CausalRow:
    name: str  # "offline" or "lookahead d"
    lookahead: int | None
    added_latency_s: float
    coarse: dict[str, float]
    map: list[float]
    detect_snippet: dict[str, Any]
    detect_alert: dict[str, Any]
    map_avg: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    alerts: list[list[cd.Alert]] = field(default_factory=list, repr=False)  # per video
    alert_latency: list[float | None] = field(default_factory=list, repr=False)  # per event

    def to_dict(self) -> dict[str, Any]:
        hidden = ("alerts", "alert_latency")
        return {k: v for k, v in self.__dict__.items() if k not in hidden}


def _row(report: EvalReport, name: str, d: int | None, videos, streams, setup) -> CausalRow:
    marks = set(report.normal_marks)
    gt = _frame_gt(report.videos, marks)
    auc, ap = metrics.frame_auc_ap([v.coarse for v in videos], gt)
    maps = metrics.detection_map(
        [v.class_probs for v in videos], [r.segments for r in report.videos],
        [r.segment_labels for r in report.videos], report.gt_classes, report.map_iou,
    )  # fmt: skip
    snip, alert, per_video = [], [], []
    for r, stream in zip(report.videos, streams, strict=True):
        alerts = cd.alerts_of(stream, report.class_names, setup.rules, setup.snippet_s)
        per_video.append(alerts)
        for seg in r.events(report.normal_marks)[0]:
            snip.append(cd.snippet_latency(stream, tuple(seg), setup.rules.threshold, setup.fps))
            alert.append(cd.alert_latency(alerts, tuple(seg), setup.fps))
    return CausalRow(
        name, d, round((d or 0) * setup.snippet_s, 3), {"auc": auc, "ap": ap}, maps,
        cd.summary(snip), cd.summary(alert), float(np.mean(maps)) if maps else None,
        alerts=per_video, alert_latency=alert,
    )  # fmt: skip


def _stream(v: VideoResult, lookaheads: list[int], snippet_s: float) -> cd.Stream:
    return cd.Stream(v.coarse, v.class_probs, cd.arrival_times(lookaheads, snippet_s))


def causal_rows(
    model: VadCLIP, report: EvalReport, setup: CausalSetup, lookaheads: list[int]
) -> list[CausalRow]:
    """Offline (the report's own scores, as if known at each snippet's end) and one row per
    lookahead; ``report`` must have frame ground truth."""
    if report.coarse is None:
        raise VadmonError(
            "--causal needs frame ground truth with normal and anomalous frames",
            report.test_list, "pass --gt-csv, --gt-temporal or --gt-segments/--gt-labels",
        )  # fmt: skip
    width = model.config.visual_width
    feats = [td.load_feature_file(r.path, width) for r in report.videos]
    zero = [[0] * len(r.coarse) for r in report.videos]
    streams = [_stream(r, z, setup.snippet_s) for r, z in zip(report.videos, zero, strict=True)]
    rows = [_row(report, "offline", None, report.videos, streams, setup)]
    early = setup.rules.threshold if setup.provisional is None else setup.provisional
    for d in lookaheads:
        scorer = monitor_scorer(model, setup, d)
        videos, streams, outcome = [], [], cp.Outcome()
        for r, f in zip(report.videos, feats, strict=True):
            steps: list[cp.Step] = []
            out, had = replay(scorer, r.video, f, steps)
            cp.run_stage(steps, report.class_names, setup.rules, early, setup.snippet_s, outcome)
            v = VideoResult(r.video, r.label, out["coarse"], out["fine"], out["class_probs"],
                            r.segments, r.segment_labels, r.path)  # fmt: skip
            videos.append(v)
            streams.append(_stream(v, had, setup.snippet_s))
        row = _row(
            report, f"lookahead {scorer.lookahead}", scorer.lookahead, videos, streams, setup
        )
        row.extra = {"asked": d, "window": scorer.window}
        if scorer.lookahead:  # lookahead 0: the final score is already the causal one
            row.extra["provisional"] = outcome.summary()
        rows.append(row)
    return rows


def _cell(m: dict[str, Any]) -> str:
    if not m["detected"]:
        return f"{'—':>6} {'—':>6} {0:>5.0%}"
    return f"{m['median_s']:>6.2f} {m['p95_s']:>6.2f} {m['detected']:>5.0%}"


def table(rows: list[CausalRow], setup: CausalSetup) -> list[str]:
    """The causal table: metrics and time to detect (s) per row."""
    head = (
        f"{'':<13} {'+lat s':>6} {'AUC':>6} {'AP':>6} {'mAP':>5}  "
        f"{'snippet: med':>12} {'p95':>6} {'found':>5}  {'alert: med':>10} {'p95':>6} {'found':>5}"
    )
    out = [f"causal replay ({setup.source}; window {rows[-1].extra.get('window', setup.window)}, "
           f"{setup.fps:g} fps, snippet {setup.snippet_s:.2f} s, threshold "
           f"{setup.rules.threshold:g})", head]  # fmt: skip
    for r in rows:
        out.append(
            f"{r.name:<13} {r.added_latency_s:>6.2f} {r.coarse['auc']:>6.4f} {r.coarse['ap']:>6.4f} "
            f"{(r.map_avg or 0):>5.2f}  {_cell(r.detect_snippet):>26}  {_cell(r.detect_alert):>24}"
        )
    for r in rows:
        pv = r.extra.get("provisional")
        if pv and pv["provisional_alerts"]:
            gain = "—" if pv["gain_median_s"] is None else f"{pv['gain_median_s']:.2f} s"
            p95 = "—" if pv["gain_p95_s"] is None else f"{pv['gain_p95_s']:.2f} s"
            out.append(
                f"provisional alerts at {r.name}: gain {gain} median, {p95} p95; "
                f"{pv['withdrawn']:.0%} of {pv['provisional_alerts']} withdrawn"
            )
    return out
