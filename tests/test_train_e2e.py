"""From video files to a localising detector through the command line only.

Synthetic videos (moving shapes; anomalous ones contain a flashing red block in a known frame
range, labelled per video only) → ``vadmon extract`` with the tiny random CLIP (10 crops for
training, centre crop for testing) → ``vadmon train`` → ``vadmon eval`` against a segment CSV the
training never saw. Training reads the CLIP tower from the features' sidecar; the centre-crop
test set is scored with an explicit ``--crop 0`` (the UCF preset's crop 5 does not exist there).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from tests import synth_videos as sv
from vadmon.model import checkpoint as ckpt_mod
from vadmon.research.annotations import read_list_csv

TINY = ["--clip-arch", "vadmon-tiny", "--clip-pretrained", "", "--device", "cpu", "--no-progress"]


def _vadmon(env: dict[str, str], *args: str, timeout: float = 150) -> str:
    res = subprocess.run(
        [sys.executable, "-m", "vadmon", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert res.returncode == 0, f"vadmon {args[0]} failed:\n{res.stdout}\n{res.stderr}"
    return res.stdout


@pytest.mark.slow
def test_videos_to_localising_detector(tmp_path: Path, subprocess_env: dict[str, str]) -> None:
    train_clips = sv.make_dataset(tmp_path / "videos_train", 48, seed=1, prefix="a")
    test_clips = sv.make_dataset(tmp_path / "videos_test", 8, seed=2, prefix="b")
    gt_csv = sv.write_segment_csv(test_clips, tmp_path / "segments.csv")

    _vadmon(subprocess_env, "extract", str(tmp_path / "videos_train"), "-o",
            str(tmp_path / "ftrain"), *TINY)  # fmt: skip
    _vadmon(subprocess_env, "extract", str(tmp_path / "videos_test"), "-o",
            str(tmp_path / "ftest"), "--crop-mode", "center", *TINY)  # fmt: skip
    train_list = tmp_path / "ftrain" / "list.csv"
    rows = read_list_csv(train_list)
    assert len(rows) == 10 * len(train_clips)  # published 10-crop layout: name__0 … name__9
    assert {r.label for r in rows} == {"Normal", "Flash"}

    model = tmp_path / "models" / "flash.pt"
    out = _vadmon(
        subprocess_env, "train", "--train-list", str(train_list), "--preset", "ucf",
        "--classes", "Normal=normal,Flash=red flash", "--visual-length", "32",
        "--epochs", "5", "--lr", "2e-4", "--milestones", "100",
        "--batch-normal", "8", "--batch-anomaly", "8", "--val-fraction", "0.25",
        "-o", str(model), "--work-dir", str(tmp_path / "runs" / "flash"),
        "--device", "cpu", "--no-progress",
    )  # fmt: skip
    assert "epoch 5/5" in out and "best epoch" in out

    ckpt = ckpt_mod.load(model)  # self-describing: config, label map, selection on validation
    assert ckpt.config.clip_arch == "vadmon-tiny" and ckpt.config.visual_length == 32
    assert ckpt.config.class_names == ["normal", "red flash"]
    assert ckpt.label_map == {"Normal": "normal", "Flash": "red flash"}
    assert len(ckpt.meta["split"]["val_videos"]) == 12
    assert ckpt.meta["validation"]["video_auc"] >= 0.8
    assert any(k.startswith("clipmodel.visual.") for k in ckpt.state_dict)

    anomalous = next(c for c in test_clips if c.event is not None)
    report_path, plots = tmp_path / "report.json", tmp_path / "plots"
    out = _vadmon(
        subprocess_env, "eval", str(model), "--test-list", str(tmp_path / "ftest" / "list__0.csv"),
        "--crop", "0", "--gt-csv", str(gt_csv), "--report", str(report_path), "--plots", str(plots),
        "--plot-videos", anomalous.name,
    )  # fmt: skip
    report = json.loads(report_path.read_text())
    assert report["videos"] == len(test_clips) and report["ground_truth"] == "csv"
    assert report["crop"] == 0 and "scored crop 0 (--crop)" in out
    assert report["coarse"]["auc"] >= 0.85, out
    assert report["video_auc"] >= 0.85, out
    assert len(report["map"]) == 5 and report["map_avg"] is not None

    png = plots / f"{anomalous.name}.png"
    image = cv2.imread(str(png))
    assert image is not None and image.shape[1] >= 600
    plotted = json.loads(png.with_suffix(".json").read_text())
    assert plotted["segments"] == [list(anomalous.event)]
    coarse = np.repeat(np.asarray(plotted["coarse"]), plotted["frames_per_snippet"])
    inside = np.zeros(len(coarse), bool)
    inside[anomalous.event[0] : anomalous.event[1]] = True
    # Localised, not video-wide: the peak lies in the event and the event scores higher.
    assert inside[int(np.argmax(coarse))]
    assert coarse[inside].mean() > coarse[~inside].mean()
