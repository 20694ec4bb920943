"""Training and evaluation mechanics: the validation split, batch orders, exact resume (stop and
real SIGKILL), and one-line errors from ``vadmon train`` / ``vadmon eval`` on bad input."""

from __future__ import annotations

import csv
import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from tests import train_helpers as th
from vadmon import cli
from vadmon.commands.train import parse_classes
from vadmon.errors import VadmonError
from vadmon.model import checkpoint as ckpt_mod
from vadmon.research import train_data as td
from vadmon.research.train import train
from vadmon.research.train_options import TrainOptions

# --------------------------------------------------------------------------- split and batches


def _videos(n_normal: int, n_anomalous: int, crops: int = 10) -> list[td.Video]:
    out = []
    for i in range(n_normal + n_anomalous):
        label = "Normal" if i < n_normal else "Event"
        name = f"v{i:03d}"
        out.append(
            td.Video(
                name,
                label,
                [Path(f"/f/{name}__{k}.npy") for k in range(crops)],
                list(range(crops)),
            )
        )
    return out


def test_validation_split_keeps_every_crop_of_a_video_on_one_side() -> None:
    videos = _videos(30, 20)
    normal = [v.label == "Normal" for v in videos]
    train_v, val_v = td.split_by_video(videos, normal, 0.2, seed=234)
    train_names, val_names = {v.name for v in train_v}, {v.name for v in val_v}
    assert not train_names & val_names
    assert train_names | val_names == {v.name for v in videos}
    assert len(val_v) == 6 + 4  # 20 % of each stratum
    assert {v.label for v in val_v} == {"Normal", "Event"}
    samples = td.samples_of(train_v, [v.label == "Normal" for v in train_v])
    assert len(samples) == 10 * len(train_v)
    held_out_paths = {p for v in val_v for p in v.paths}
    assert not held_out_paths & {s.path for s in samples}
    # Seeded: same seed, same split; another seed, another split.
    again = td.split_by_video(videos, normal, 0.2, seed=234)[1]
    assert [v.name for v in again] == [v.name for v in val_v]
    other = td.split_by_video(videos, normal, 0.2, seed=1)[1]
    assert {v.name for v in other} != val_names
    assert td.split_by_video(videos, normal, 0.0, seed=234)[1] == []


def test_split_from_a_real_list_groups_crops(tmp_path: Path) -> None:
    videos = th.make_videos(12, seed=3, prefix="x")
    listed = td.read_videos(th.write_features(videos, tmp_path, crops=10, seed=1))
    assert [v.name for v in listed] == [v.name for v in videos]
    assert all(v.crops == list(range(10)) for v in listed)
    assert listed[0].path_for_crop(5).name == f"{videos[0].name}__5.npy"


def test_paired_and_shuffled_batch_orders() -> None:
    samples = [td.Sample(Path(f"{i}.npy"), "x", i % 3 == 0) for i in range(60)]
    paired = td.epoch_batches(samples, 1, 234, 0, batch_normal=4, batch_anomaly=6)
    assert len(paired) == min(20 // 4, 40 // 6)
    for b in paired:
        assert sum(samples[i].normal for i in b) == 4 and len(b) == 10
    assert paired == td.epoch_batches(samples, 1, 234, 0, 4, 6)
    assert paired != td.epoch_batches(samples, 2, 234, 0, 4, 6)
    flat = td.epoch_batches(samples, 1, 234, 16)
    assert [len(b) for b in flat] == [16, 16, 16]  # full batches only (published drop_last)
    assert len({i for b in flat for i in b}) == 48


# --------------------------------------------------------------------------- exact resume


@pytest.fixture(scope="module")
def small_data(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("data")
    videos = th.make_videos(16, seed=5, prefix="r")
    test_videos = th.make_videos(6, seed=6, prefix="t")
    return {
        "root": root,
        "train": th.write_features(videos, root / "train", crops=2, seed=7),
        "test": th.write_features(test_videos, root / "test", crops=1, seed=8),
        "gt": th.write_segment_csv(test_videos, root / "gt.csv"),
    }


def _opts(data: dict[str, Path], name: str, **kw) -> TrainOptions:
    base = {
        "train_list": data["train"],
        "output": data["root"] / f"{name}.pt",
        "work_dir": data["root"] / name,
        "clip_arch": "vadmon-tiny",
        "clip_pretrained": "",
        "classes": parse_classes(th.CLASSES),
        "visual_length": 32,
        "overrides": {
            "epochs": 3,
            "lr": 5e-4,
            "milestones": [2],
            "batch_normal": 3,
            "batch_anomaly": 3,
        },
        "val_fraction": 0.25,
        "val_crop": 1,
        "device": "cpu",
        "log": lambda _line: None,
    }
    base.update(kw)
    return TrainOptions(**base)


def _assert_same_weights(a: Path, b: Path) -> None:
    sa, sb = ckpt_mod.load(a).state_dict, ckpt_mod.load(b).state_dict
    assert sa.keys() == sb.keys()
    for key in sa:
        assert torch.equal(sa[key], sb[key]), key


def _strip_time(history: list[dict]) -> list[dict]:
    return [{k: v for k, v in h.items() if k != "seconds"} for h in history]


def test_stop_and_resume_gives_identical_weights(small_data: dict[str, Path]) -> None:
    full = train(_opts(small_data, "full"))
    assert full.finished and [h["epoch"] for h in full.history] == [1, 2, 3]

    part = _opts(small_data, "part", stop_after=1)
    first = train(part)
    assert not first.finished and first.epochs_done == 1 and not part.output.exists()
    with pytest.raises(VadmonError, match="already holds a run"):
        train(_opts(small_data, "part"))  # never silently restart over a run
    with pytest.raises(VadmonError, match="differs from the interrupted run"):
        train(_opts(small_data, "part", resume=True, weight_decay=0.5))
    resumed = train(_opts(small_data, "part", resume=True))
    assert resumed.finished and resumed.best_epoch == full.best_epoch
    _assert_same_weights(full.output, part.output)
    assert _strip_time(resumed.history) == _strip_time(full.history)

    # Re-running a finished run trains nothing more and duplicates no epoch.
    again = train(_opts(small_data, "part", resume=True))
    assert [h["epoch"] for h in again.history] == [1, 2, 3]
    _assert_same_weights(full.output, part.output)
    history_file = json.loads((small_data["root"] / "part" / "history.json").read_text())
    assert [h["epoch"] for h in history_file] == [1, 2, 3]

    meta = ckpt_mod.load(full.output).meta
    assert meta["best_epoch"] == full.best_epoch
    assert set(meta["validation"]) == {"video_auc", "bce"}
    assert meta["split"]["val_videos"] and meta["hyper"]["seed"] == 234


def _cli_train(data: dict[str, Path], name: str, *extra: str) -> list[str]:
    return [
        sys.executable, "-m", "vadmon", "train",
        "--train-list", str(data["train"]),
        "-o", str(data["root"] / f"{name}.pt"),
        "--work-dir", str(data["root"] / name),
        "--clip-arch", "vadmon-tiny", "--clip-pretrained", "",
        "--classes", th.CLASSES, "--visual-length", "32",
        "--epochs", "4", "--lr", "5e-4", "--milestones", "2",
        "--batch-normal", "2", "--batch-anomaly", "2", "--val-fraction", "0.25", "--val-crop", "1",
        "--device", "cpu", "--no-progress", *extra,
    ]  # fmt: skip


@pytest.mark.slow
def test_sigkill_after_a_checkpoint_then_resume_is_exact(
    small_data: dict[str, Path], subprocess_env: dict[str, str]
) -> None:
    ref = subprocess.run(
        _cli_train(small_data, "ref"), env=subprocess_env, capture_output=True, text=True,
        timeout=180,
    )  # fmt: skip
    assert ref.returncode == 0, ref.stderr
    state = small_data["root"] / "killed" / "last.pt"
    proc = subprocess.Popen(
        _cli_train(small_data, "killed"), env=subprocess_env, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 120
        while not state.exists() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == -signal.SIGKILL
    epochs_done = torch.load(state, weights_only=True)["epoch"]
    assert 1 <= epochs_done < 4  # really interrupted mid-run
    assert not (small_data["root"] / "killed.pt").exists()
    res = subprocess.run(
        _cli_train(small_data, "killed", "--resume"), env=subprocess_env, capture_output=True,
        text=True, timeout=180,
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    assert "resuming" in res.stdout and f"epoch {epochs_done + 1}/4" in res.stdout
    assert f"epoch {epochs_done}/4" not in res.stdout  # nothing trained twice
    _assert_same_weights(small_data["root"] / "ref.pt", small_data["root"] / "killed.pt")


# --------------------------------------------------------------------------- eval CLI


@pytest.fixture(scope="module")
def tiny_checkpoint(small_data: dict[str, Path]) -> Path:
    opts = _opts(small_data, "evalmodel", val_fraction=0.0, val_crop=0)
    opts.overrides = {**opts.overrides, "epochs": 1}
    train(opts)
    return opts.output


def _run_cli(capsys: pytest.CaptureFixture, *argv: str) -> tuple[int, str, str]:
    rc = cli.main(list(argv))
    out, err = capsys.readouterr()
    return rc, out, err


def _pairwise_auc(scores: np.ndarray, labels: np.ndarray) -> float:
    """ROC-AUC as P(anomalous scores above normal), ties counting half (Mann-Whitney)."""
    pos, neg = scores[labels == 1], scores[labels == 0]
    return float((pos[:, None] > neg).mean() + 0.5 * (pos[:, None] == neg).mean())


def _expected_frame_auc(checkpoint: Path, test_list: Path) -> tuple[float, float]:
    """Frame AUCs of ``eval``'s own inputs, computed here: the checkpoint scores each test
    video and every snippet stands for 16 frames labelled by the synthetic events (events start
    and end on snippet boundaries, so snippet-level pairs weigh exactly as frame-level ones)."""
    from vadmon.model.predict import score_features

    model = ckpt_mod.load_model(checkpoint)
    events = {v.name: v.event for v in th.make_videos(6, seed=6, prefix="t")}
    coarse, fine, labels = [], [], []
    for path in sorted(test_list.parent.glob("*__0.npy")):
        scores = score_features(model, np.load(path))
        truth = np.zeros(len(scores["coarse"]))
        event = events[path.name.split("__")[0]]
        if event is not None:
            truth[event[0] : event[1]] = 1
        coarse.append(scores["coarse"])
        fine.append(1 - scores["class_probs"][:, 0])
        labels.append(truth)
    truth = np.concatenate(labels)
    return _pairwise_auc(np.concatenate(coarse), truth), _pairwise_auc(np.concatenate(fine), truth)


def test_eval_reports_metrics_and_plots(
    tiny_checkpoint: Path, small_data: dict[str, Path], tmp_path: Path, capsys
) -> None:
    rc, out, err = _run_cli(
        capsys, "eval", str(tiny_checkpoint), "--test-list", str(small_data["test"]),
        "--gt-csv", str(small_data["gt"]), "--report", str(tmp_path / "r.json"), "--probe",
        "--scores", str(tmp_path / "scores"), "--plots", str(tmp_path / "plots"),
        "--plot-top", "2",
    )  # fmt: skip
    assert rc == 0, err
    assert "frame coarse (C-Branch): AUC" in out and "frame fine (A-Branch): AUC" in out
    assert "mAP@IoU 0.1:" in out
    assert "scored crop 0 (the checkpoint's validation crop)" in out
    assert "no features.json" in out  # written by the test, not by vadmon extract
    assert "supervised linear probe (frame labels, 3-fold by video): frame AUC" in out
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["videos"] == 6 and report["ground_truth"] == "csv"
    assert report["gt_classes"] == ["Normal", "Event"]
    coarse, fine = _expected_frame_auc(tiny_checkpoint, small_data["test"])
    assert report["coarse"]["auc"] == pytest.approx(coarse, abs=1e-9)
    assert report["fine"]["auc"] == pytest.approx(fine, abs=1e-9)
    assert len(report["map"]) == 5
    assert report["crop"] == 0 and report["probe"]["model_auc"] == report["coarse"]["auc"]
    assert report["probe"]["auc"] > 0.9  # the synthetic events are plainly visible
    for v in report["per_video"]:  # normal videos carry no segment
        assert bool(v["segments"]) == (v["label"] == "Event")

    # Per-snippet scores: every snippet once, CSV and NPZ agree, gt from the segment CSV.
    rows = list(csv.DictReader((tmp_path / "scores" / "scores.csv").open()))
    npz = np.load(tmp_path / "scores" / "scores.npz")
    videos = td.read_videos(small_data["test"])
    assert len(rows) == sum(np.load(v.paths[0]).shape[0] for v in videos) == len(npz["coarse"])
    assert list(npz["video"]) == [v.name for v in videos] and npz["offsets"][-1] == len(rows)
    np.testing.assert_allclose([float(r["coarse"]) for r in rows], npz["coarse"], atol=1e-6)
    assert npz["class_probs"].shape == (len(rows), 2)
    spans = {r.split(",")[0]: r.split(",")[1:3] for r in small_data["gt"].read_text().split()[1:]}
    for r in rows:
        start, end = spans[r["video"]]
        inside = bool(start) and int(start) <= int(r["start_frame"]) < int(end)
        assert float(r["gt"]) == (1.0 if inside else 0.0)
        assert r["probe"] != ""

    # Plots: the 2 largest errors (mean |score − gt| per snippet, recomputed from the CSV).
    assert "2 plots" in out
    assert "the 2 largest errors by mean |C-Branch score − event fraction| per snippet" in out
    errors: dict[str, list[float]] = {}
    for r in rows:
        errors.setdefault(r["video"], []).append(abs(float(r["coarse"]) - float(r["gt"])))
    worst = sorted(errors, key=lambda k: np.mean(errors[k]), reverse=True)[:2]
    pngs = sorted((tmp_path / "plots").glob("*.png"))
    assert sorted(p.stem for p in pngs) == sorted(worst)
    image = cv2.imread(str(pngs[0]))
    assert image is not None and image.shape[0] > 100 and image.shape[1] > 300
    for png in pngs:
        plotted = json.loads(png.with_suffix(".json").read_text())
        axes, legend = plotted["layout"]["axes"], plotted["layout"]["legend"]
        assert legend[0] >= axes[2]  # the legend sits right of the curves, never over them
        assert plotted["segments"] == next(v for v in report["per_video"]
                                          if v["video"] == png.stem)["segments"]  # fmt: skip


def test_eval_never_substitutes_the_scoring_crop(
    tiny_checkpoint: Path, small_data: dict[str, Path], capsys
) -> None:
    rc, out, err = _run_cli(
        capsys, "eval", str(tiny_checkpoint), "--test-list", str(small_data["test"]),
        "--preset", "ucf",
    )  # fmt: skip
    assert rc == 2 and len(err.strip().splitlines()) == 1 and out == ""
    assert "crop 5 of video 'tno000' is not in the list (crops [0])" in err
    assert "tno000__5.npy" in err and "--crop 0" in err


def test_training_refuses_a_missing_validation_crop(small_data: dict[str, Path]) -> None:
    opts = _opts(small_data, "nocrop", val_crop=5)
    with pytest.raises(VadmonError, match=r"crop 5 of video .* missing .*__5\.npy"):
        train(opts)
    assert not opts.work_dir.exists()


def test_eval_missing_list_is_one_line_exit_2(
    tiny_checkpoint: Path, tmp_path: Path, subprocess_env: dict[str, str]
) -> None:
    cmd = [sys.executable, "-m", "vadmon", "eval", str(tiny_checkpoint), "--test-list",
           str(tmp_path / "nope.csv")]  # fmt: skip
    res = subprocess.run(cmd, env=subprocess_env, capture_output=True, text=True, timeout=60)
    assert res.returncode == 2
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and "test list not found" in lines[0] and "Traceback" not in res.stderr


def test_eval_wrong_feature_width_is_one_line(
    tiny_checkpoint: Path, tmp_path: Path, capsys
) -> None:
    np.save(tmp_path / "w__0.npy", np.zeros((20, 32), np.float32))
    (tmp_path / "l.csv").write_text(f"path,label\n{tmp_path / 'w__0.npy'},Normal\n")
    rc, _, err = _run_cli(
        capsys, "eval", str(tiny_checkpoint), "--test-list", str(tmp_path / "l.csv")
    )
    assert rc == 2 and len(err.strip().splitlines()) == 1
    assert "features are 32-wide but the model's CLIP embeds 64" in err and "w__0.npy" in err
    assert f"{tmp_path / 'l.csv'}:2" in err  # the list row


def test_eval_class_mismatch_is_one_clear_error(
    tiny_checkpoint: Path, small_data: dict[str, Path], tmp_path: Path, capsys
) -> None:
    gt = tmp_path / "gt.csv"
    videos = td.read_videos(small_data["test"])
    rows = [f"{v.name},16,48,{'Event' if i % 2 else 'Fire'}" for i, v in enumerate(videos)]
    gt.write_text("video,start_frame,end_frame,label\n" + "\n".join(rows) + "\n")
    rc, _, err = _run_cli(
        capsys, "eval", str(tiny_checkpoint), "--test-list", str(small_data["test"]),
        "--gt-csv", str(gt),
    )  # fmt: skip
    assert rc == 2 and len(err.strip().splitlines()) == 1
    assert "ground truth has 2 anomaly classes (Event, Fire) but the checkpoint has 1" in err


def test_eval_and_train_argument_errors(
    tiny_checkpoint: Path, small_data: dict[str, Path], tmp_path: Path, capsys
) -> None:
    rc, _, err = _run_cli(
        capsys, "eval", str(tiny_checkpoint), "--test-list", str(small_data["test"]),
        "--gt-csv", str(small_data["gt"]), "--gt-temporal", str(small_data["gt"]),
    )  # fmt: skip
    assert rc == 2 and "give one ground truth" in err
    bad = tmp_path / "bad.csv"
    bad.write_text(f"path,label\n{small_data['root'] / 'train' / 'rno000__0.npy'},Explosion\n")
    rc, _, err = _run_cli(
        capsys, "train", "--train-list", str(bad), "-o", str(tmp_path / "m.pt"),
        "--clip-arch", "vadmon-tiny", "--clip-pretrained", "", "--classes", th.CLASSES,
        "--work-dir", str(tmp_path / "w"), "--device", "cpu",
    )  # fmt: skip
    assert rc == 2 and "label 'Explosion' of video 'rno000' matches no class" in err


def test_eval_ground_truth_formats_agree(
    tiny_checkpoint: Path, small_data: dict[str, Path], tmp_path: Path
) -> None:
    """Segment CSV, UCF temporal file and published-style arrays describe the same truth."""
    from vadmon.research.evaluate import GroundTruthSource, evaluate_checkpoint

    videos = td.read_videos(small_data["test"])
    gt = {r.split(",")[0]: r.split(",") for r in small_data["gt"].read_text().splitlines()[1:]}
    temporal, segs, labs = [], [], []
    for v in videos:
        _, start, end, label = gt[v.name]
        if start:
            temporal.append(f"{v.name}  {label}  {start}  {end}  -1  -1")
            segs.append([[start, end]])
            labs.append([label])
        else:
            temporal.append(f"{v.name}  Normal  -1  -1  -1  -1")
            frames = 16 * np.load(v.paths[0]).shape[0]
            segs.append([[0, frames]])
            labs.append(["A"])
    (tmp_path / "t.txt").write_text("\n".join(temporal) + "\n")
    seg_arr, lab_arr = np.empty(len(segs), object), np.empty(len(labs), object)
    seg_arr[:], lab_arr[:] = segs, labs
    np.save(tmp_path / "s.npy", seg_arr, allow_pickle=True)
    np.save(tmp_path / "l.npy", lab_arr, allow_pickle=True)

    sources = {
        "csv": GroundTruthSource(csv=small_data["gt"]),
        "temporal": GroundTruthSource(temporal=tmp_path / "t.txt"),
        "segments_npy": GroundTruthSource(segments_npy=tmp_path / "s.npy",
                                          labels_npy=tmp_path / "l.npy"),
    }  # fmt: skip
    reports = {
        k: evaluate_checkpoint(tiny_checkpoint, small_data["test"], gt=src)
        for k, src in sources.items()
    }
    assert {k: r.gt_kind for k, r in reports.items()} == {k: k for k in sources}
    aucs = {r.coarse["auc"] for r in reports.values()}
    assert len(aucs) == 1  # identical frame ground truth
    # Normal videos are marked 'A' in the published formats, the normal key in the CSV.
    assert reports["temporal"].map == reports["segments_npy"].map
    no_gt = evaluate_checkpoint(tiny_checkpoint, small_data["test"])
    assert no_gt.coarse is None and no_gt.video_auc == reports["csv"].video_auc


def test_training_can_start_from_a_checkpoint(
    tiny_checkpoint: Path, small_data: dict[str, Path]
) -> None:
    opts = _opts(small_data, "finetune", checkpoint_init=tiny_checkpoint, val_fraction=0.0)
    opts.overrides = {**opts.overrides, "epochs": 1}
    result = train(opts)
    assert result.finished
    start, tuned = ckpt_mod.load(tiny_checkpoint), ckpt_mod.load(opts.output)
    assert tuned.config == start.config and tuned.label_map == start.label_map
    clip_keys = [k for k in start.state_dict if k.startswith("clipmodel.")]
    assert all(torch.equal(start.state_dict[k], tuned.state_dict[k]) for k in clip_keys)
    assert not torch.equal(
        start.state_dict["classifier.weight"], tuned.state_dict["classifier.weight"]
    )
