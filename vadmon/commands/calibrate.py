"""``vadmon calibrate``: a per-camera threshold from normal footage and a false-alarm target."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from vadmon.errors import VadmonError


def _scores_from_logs(paths: list[Path], camera: str):
    from vadmon.alerts.scorelog import read_logs

    return read_logs(paths, camera)


def _scores_from_videos(cfg, camera: str, videos: list[Path]):
    from vadmon.inference.build import build_scorer
    from vadmon.inference.offline import score_video
    from vadmon.inference.phrases import PhraseBank
    from vadmon.settings import capture_settings

    built = build_scorer(cfg.model, cfg.model.device)
    scorer, encoder = built.scorer, built.encoder
    bank = PhraseBank.from_config(cfg.explain, encoder.clip)
    snippet = capture_settings(cfg, camera).snippet
    out, offset = [], 0.0
    for video in videos:
        scores = score_video(video, camera, snippet, scorer, encoder, bank)
        # files follow each other on one clock, an hour apart, so no event spans two files
        out += [_shifted(m, offset) for m in scores]
        offset += (scores[-1].t_end if scores else 0.0) + 3600.0
    return out


def _shifted(m, offset: float):
    from dataclasses import replace

    return replace(
        m, t_start=m.t_start + offset, t_end=m.t_end + offset, t_emitted=m.t_emitted + offset
    )


def _scores_live(cfg, camera: str, seconds: float):
    import zmq

    from vadmon.runtime.messages import MessageError, ScoreMessage, decode
    from vadmon.runtime.zmq_context import process_context
    from vadmon.settings import score_endpoint

    sub = process_context().socket(zmq.SUB)
    sub.setsockopt(zmq.LINGER, 0)
    sub.setsockopt(zmq.MAXMSGSIZE, 1 << 20)
    sub.setsockopt(zmq.SUBSCRIBE, ScoreMessage.topic)
    sub.connect(score_endpoint(cfg))
    out, end = [], time.monotonic() + seconds
    try:
        while (left := end - time.monotonic()) > 0:
            if not sub.poll(int(min(left, 1.0) * 1000)):
                continue
            try:
                msg, _ = decode(sub.recv_multipart())
            except MessageError:
                continue
            if isinstance(msg, ScoreMessage) and msg.camera == camera:
                out.append(msg)
    finally:
        sub.close()
    return out


def run(args: argparse.Namespace) -> int:
    from vadmon.alerts.calibrate import choose, curve, footage_seconds, thresholds_grid
    from vadmon.config import load_config
    from vadmon.config.calibration import calibration_path, write_calibration
    from vadmon.settings import alert_settings

    if args.plot:
        _pyplot()  # before minutes of scoring, not after
    cfg = load_config(args.config)
    if args.from_feedback:
        return _from_feedback(cfg, args)
    if args.camera is None or args.target_false_alarms_per_day is None:
        raise VadmonError(
            "--camera and --target-false-alarms-per-day are needed", "vadmon calibrate"
        )
    if args.camera not in cfg.cameras:
        raise VadmonError(f"camera {args.camera!r} is not in the config", str(args.config))
    if args.logs:
        scores = _scores_from_logs(args.logs, args.camera)
    elif args.video:
        scores = _scores_from_videos(cfg, args.camera, args.video)
    else:
        scores = _scores_live(cfg, args.camera, args.live)
    if not scores:
        raise VadmonError(f"no scores for camera {args.camera!r}", "input", "check the source")
    base = alert_settings(cfg).per_camera.get(args.camera) or alert_settings(cfg).events
    points = curve(scores, base, thresholds_grid(max(0.01, base.hysteresis)))
    chosen = choose(points, args.target_false_alarms_per_day)
    hours = footage_seconds(scores) / 3600
    _table(points, chosen, hours, args.target_false_alarms_per_day)
    if args.plot:
        _plot(points, chosen, args.target_false_alarms_per_day, args.plot)
        print(f"curve: {args.plot}")
    if chosen is None:
        raise VadmonError(
            "no threshold meets the target on this footage",
            f"camera {args.camera}",
            "check that the footage is normal, or raise --target-false-alarms-per-day",
        )
    upper, needed = _honest(chosen, hours, args.target_false_alarms_per_day)
    if args.dry_run:
        return 0
    path = calibration_path(cfg, Path(args.config))
    write_calibration(
        path,
        args.camera,
        {
            "threshold": chosen.threshold,
            "target_false_alarms_per_day": args.target_false_alarms_per_day,
            "expected_per_day": round(chosen.per_day, 3),
            "footage_hours": round(hours, 3),
            "upper_bound_per_day": round(upper, 3),
            "footage_hours_needed": round(needed, 1),
        },
    )
    print(f"threshold {chosen.threshold:.2f} for {args.camera} written to {path}")
    return 0


def _from_feedback(cfg, args: argparse.Namespace) -> int:
    """Per-camera thresholds from the review page's false alarms (``alerts.feedback_calibrate``)."""
    from vadmon.alerts.feedback_calibrate import propose
    from vadmon.alerts.outbox import Outbox
    from vadmon.config.calibration import calibration_path, write_calibration
    from vadmon.settings import alert_settings

    settings = alert_settings(cfg)
    current = {c: settings.per_camera.get(c, settings.events).threshold for c in cfg.cameras}
    if args.camera is not None:
        if args.camera not in cfg.cameras:
            raise VadmonError(f"camera {args.camera!r} is not in the config", str(args.config))
        current = {args.camera: current[args.camera]}
    if not cfg.storage.outbox_db.is_file():
        raise VadmonError("no events database yet", str(cfg.storage.outbox_db), "run the monitor")
    outbox = Outbox(cfg.storage.outbox_db, readonly=True)
    try:
        proposals = propose(outbox.feedback().values(), current)
    finally:
        outbox.close()
    if not proposals:
        raise VadmonError(
            "no false alarms marked for these cameras",
            "feedback",
            "mark events 'false alarm' on the review page (docs/WEB.md) first",
        )
    for p in proposals:
        print(
            f"{p.camera}: threshold {p.current:.2f} -> {p.threshold:.2f} "
            f"({p.removed}/{p.false_alarms} false alarms gone, {p.kept}/{p.confirmed} confirmed kept)"
        )
    if args.dry_run:
        return 0
    path = calibration_path(cfg, Path(args.config))
    for p in proposals:
        if p.changed:
            entry = {"threshold": p.threshold, "from_feedback": p.false_alarms}
            write_calibration(path, p.camera, entry)
    print(f"written to {path}")
    return 0


def _table(points, chosen, hours: float, target: float) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"events/day on {hours:.2f} h of normal footage (target ≤ {target:g})")
    for col in ("threshold", "events", "events/day"):
        table.add_column(col, justify="right")
    step = max(1, len(points) // 20)
    shown = {p.threshold for p in points[::step]} | ({chosen.threshold} if chosen else set())
    for p in points:
        if p.threshold in shown:
            mark = " ←" if chosen and p.threshold == chosen.threshold else ""
            table.add_row(f"{p.threshold:.2f}{mark}", str(p.events), f"{p.per_day:.1f}")
    Console().print(table)


def _honest(chosen, hours: float, target: float) -> tuple[float, float]:
    """Say what the footage can and cannot show: the rate's upper bound, the hours needed."""
    from vadmon.alerts.calibrate import rate_bound

    events = chosen.events if chosen is not None else 0
    upper, needed = rate_bound(events, hours, target)
    print(
        f"{events} false alarm(s) in {hours:.2f} h at the chosen threshold: the rate is at most "
        f"{upper:.1f}/day (95 %, rule of three); showing ≤ {target:g}/day needs ≥ {needed:.0f} h "
        "of normal footage"
    )
    if hours < needed:
        print(
            f"warning: only {hours:.2f} h of footage, fewer than the {needed:.0f} h the target "
            "needs: the threshold is a starting point, not a guarantee",
            file=sys.stderr,
        )
    return upper, needed


def _pyplot():
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise VadmonError(
            "plots need matplotlib", "--plot", "pip install 'vadmon[plots]' (or drop --plot)"
        ) from None
    return plt


def _plot(points, chosen, target: float, path: Path) -> None:
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.plot([p.threshold for p in points], [p.per_day for p in points], label="events/day")
    ax.axhline(target, color="tab:red", linestyle="--", label=f"target {target:g}/day")
    if chosen is not None:
        ax.axvline(chosen.threshold, color="tab:green", label=f"chosen {chosen.threshold:.2f}")
    ax.set_xlabel("threshold")
    ax.set_ylabel("false alarms per day")
    ax.set_yscale("symlog")
    ax.set_ylim(bottom=0)
    ax.legend(loc="upper right")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "calibrate",
        help="choose a camera's threshold from normal footage and a false-alarm target",
        description="Replays the alert logic over normal footage at each threshold and writes "
        "the lowest one meeting the target to <config>.calibration.yaml (or calibration_file).",
    )
    p.add_argument("--config", type=Path, required=True)
    p.add_argument("--camera", help="the camera (--from-feedback: default all)")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--from", dest="logs", nargs="+", type=Path, help="score-log files/folders")
    src.add_argument("--video", nargs="+", type=Path, help="normal video files to score")
    src.add_argument("--live", type=float, metavar="SECONDS", help="record the running monitor")
    src.add_argument(
        "--from-feedback",
        action="store_true",
        help="propose thresholds from events marked 'false alarm' on the review page",
    )
    p.add_argument("--target-false-alarms-per-day", type=float)
    p.add_argument("--plot", type=Path, help="write the events/day curve as a PNG")
    p.add_argument("--dry-run", action="store_true", help="show the curve, write nothing")
    p.set_defaults(handler=run)
