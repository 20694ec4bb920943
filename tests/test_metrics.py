"""Paper metrics: the official fixtures, the pieces on hand-checkable cases, and the real
annotation files.

The annotation files ship in ``tests/data``; the metric fixtures span every annotated test video
(~22 MB of inputs), so they are read from ``../shared/reference/official`` when present and
skipped with a reason otherwise.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import official_preset_dir

from vadmon.errors import VadmonError
from vadmon.research import annotations as ann
from vadmon.research import metrics as m

# --------------------------------------------------------------------------- official fixtures


def _fixture(preset: str) -> tuple[dict, dict]:
    base = official_preset_dir(preset)
    inputs = torch.load(base / "metrics_inputs.pt", weights_only=True)
    expected = json.loads((base / "metrics_expected.json").read_text())
    return inputs, expected


@pytest.mark.parametrize("preset", ["ucf", "xd"])
def test_official_metrics_reproduced(preset: str) -> None:
    inputs, expected = _fixture(preset)
    posteriors = [p.numpy() for p in inputs["snippet_probs"]]
    # The fixtures hold class posteriors only: their AUC/AP use the fine score 1 − P(normal).
    result = m.evaluate(
        [m.fine_anomaly_score(p) for p in posteriors],
        inputs["frame_gt"].numpy(),
        posteriors,
        inputs["gt_segments"],
        inputs["gt_labels"],
        expected["classes"],
        expected["map_iou"],
    )
    assert result.auc == pytest.approx(expected["auc"], abs=1e-6)
    assert result.ap == pytest.approx(expected["ap"], abs=1e-6)
    assert result.map == pytest.approx(expected["map"], abs=1e-6)
    assert result.map_avg == pytest.approx(expected["map_avg"], abs=1e-6)


def test_fixture_ground_truth_matches_annotation_files(reference_dir: Path) -> None:
    """The readers rebuild the fixtures' ground truth from the official files."""
    a = reference_dir / "annotations"
    for preset, seg, lab in [
        ("ucf", "gt_segment_ucf.npy", "gt_label_ucf.npy"),
        ("xd", "gt_segment.npy", "gt_label.npy"),
    ]:
        inputs, _ = _fixture(preset)
        segments, labels = ann.read_gt_arrays(a / seg, a / lab)
        assert segments == [[tuple(s) for s in v] for v in inputs["gt_segments"]]
        assert labels == inputs["gt_labels"]
        frames = [16 * p.shape[0] for p in inputs["snippet_probs"]]
        frame_gt = ann.frame_gt_from_arrays(segments, labels, frames)
        np.testing.assert_array_equal(frame_gt, inputs["frame_gt"].numpy())

    # UCF frame labels also follow from the temporal annotation, matched by name to the list.
    inputs, _ = _fixture("ucf")
    videos = [e.video for e in ann.read_list_csv(a / "ucf_CLIP_rgbtest.csv")]
    temporal = ann.read_ucf_temporal(a / "Temporal_Anomaly_Annotation.txt")
    frames = [16 * p.shape[0] for p in inputs["snippet_probs"]]
    frame_gt = ann.frame_gt_in_list_order(videos, temporal, frames)
    np.testing.assert_array_equal(frame_gt, inputs["frame_gt"].numpy())


# --------------------------------------------------------------------------- pieces


def test_runs_above_is_strict_and_half_open() -> None:
    assert m.runs_above(np.array([0, 1, 1, 0, 1]), 0.5) == [(1, 3), (4, 5)]
    assert m.runs_above(np.array([0.5, 0.5, 0.6]), 0.5) == [(2, 3)]
    assert m.runs_above(np.array([1.0, 1.0]), 0.0) == [(0, 2)]
    assert m.runs_above(np.zeros(4), 0.0) == []


def test_interval_iou_counts_integer_frames() -> None:
    assert m.interval_iou((0, 10), (5, 15)) == pytest.approx(5 / 15)
    assert m.interval_iou((0, 10), (0, 10)) == 1.0
    assert m.interval_iou((0, 10), (10, 20)) == 0.0
    assert m.interval_iou((0, 4), (1, 2)) == pytest.approx(1 / 4)


def test_class_scores_mean_of_top_frames_over_16() -> None:
    p = np.zeros((32, 2), dtype=np.float32)  # 32 frames → top 2 per class
    p[:3, 0] = [0.9, 0.5, 0.1]
    p[10, 1] = 0.4
    np.testing.assert_allclose(m.class_scores(p), [(0.9 + 0.5) / 2, 0.4 / 2], rtol=1e-6)


def test_video_proposals_threshold_min_length_and_score() -> None:
    # max 1, min 0 → threshold 0.4: frames > 0.4 form runs [2,5) and [7,8); the latter is 1 frame.
    v = np.array([0.0, 0.4, 0.5, 1.0, 0.45, 0.0, 0.0, 0.9, 0.0], dtype=np.float32)
    props = m.video_proposals(v, c_score=0.5, video=3)
    assert [(p.video, p.start, p.end) for p in props] == [(3, 2, 5)]
    assert props[0].score == pytest.approx(1.0 + 0.7 * 0.5)


def test_nms_suppresses_overlap_within_a_video_only() -> None:
    a = m.Proposal(0, 0, 10, 0.9)
    overlapping = m.Proposal(0, 1, 10, 0.8)  # IoU 0.9 with a
    light = m.Proposal(0, 5, 15, 0.7)  # IoU 1/3 with a, 5/14 with overlapping
    other_video = m.Proposal(1, 0, 10, 0.95)
    kept = m.nms([a, overlapping, light, other_video], iou=0.6)
    assert kept == [a, light, other_video]


def test_average_precision_hand_cases() -> None:
    gt = [m.Segment(0, 10, 20)]
    perfect = [m.Proposal(0, 10, 20, 1.0)]
    assert m.average_precision(perfect, gt, 0.5) == 1.0
    # A false positive ranked first halves precision at the true positive: AP = (1/2)·1 / 1.
    fp_first = [m.Proposal(0, 30, 40, 2.0), m.Proposal(0, 10, 20, 1.0)]
    assert m.average_precision(fp_first, gt, 0.5) == pytest.approx(0.5)
    # A ground-truth segment is matched once; the duplicate is a false positive after it.
    dup = [m.Proposal(0, 10, 20, 2.0), m.Proposal(0, 10, 20, 1.0)]
    assert m.average_precision(dup, gt, 0.5) == 1.0
    # Wrong video or too little overlap: no true positive → 0.
    assert m.average_precision([m.Proposal(1, 10, 20, 1.0)], gt, 0.1) == 0.0
    assert m.average_precision([m.Proposal(0, 15, 30, 1.0)], gt, 0.5) == 0.0  # IoU 0.25
    # Two ground truths, one found at rank 1: AP = 1·1 / 2.
    two = [m.Segment(0, 10, 20), m.Segment(0, 50, 60)]
    assert m.average_precision(perfect, two, 0.5) == pytest.approx(0.5)


def _two_class_case() -> tuple[list[np.ndarray], list, list]:
    # Video 0: class "X" on snippets 1-2 (frames 16..48), normal elsewhere; video 1: all normal
    # except snippet 2 ("X", frames 32..48).
    x0 = np.array([0.1, 0.9, 0.9, 0.1], dtype=np.float32)
    x1 = np.array([0.2, 0.2, 0.8, 0.2], dtype=np.float32)
    posts = [np.stack([1 - x0, x0], axis=1), np.stack([1 - x1, x1], axis=1)]
    segments = [[(0, 16), (48, 64), (16, 48)], [(0, 32), (48, 64), (32, 48)]]
    labels = [["N", "N", "X"], ["N", "N", "X"]]
    return posts, segments, labels


def test_detection_map_perfect_posteriors_score_100() -> None:
    posts, segments, labels = _two_class_case()
    assert m.detection_map(posts, segments, labels, ["N", "X"]) == pytest.approx([100.0] * 5)


def test_detection_map_class_without_gt_scores_zero_in_mean() -> None:
    posts, segments, labels = _two_class_case()
    labels = [["A" if x == "N" else x for x in v] for v in labels]  # UCF-style normal label
    assert m.detection_map(posts, segments, labels, ["N", "X"]) == pytest.approx([50.0] * 5)


def test_detection_map_level_is_zero_when_a_class_has_no_proposal() -> None:
    posts, segments, labels = _two_class_case()
    flat = [np.concatenate([p, np.full((p.shape[0], 1), 0.3, np.float32)], axis=1) for p in posts]
    assert m.detection_map(flat, segments, labels, ["N", "X", "Y"]) == [0.0] * 5


def test_frame_auc_ap_repeats_snippets() -> None:
    gt = np.concatenate([np.zeros(16), np.ones(16), np.zeros(16)])
    auc, ap = m.frame_auc_ap([np.array([0.1, 0.9]), np.array([0.2])], gt)
    assert (auc, ap) == (1.0, 1.0)
    with pytest.raises(ValueError):
        m.frame_auc_ap([np.array([0.1, 0.9])], gt)


# --------------------------------------------------------------------------- annotation files


def test_official_ucf_annotations_parse_consistently(reference_dir: Path) -> None:
    a = reference_dir / "annotations"
    entries = ann.read_list_csv(a / "ucf_CLIP_rgbtest.csv")
    temporal = ann.read_ucf_temporal(a / "Temporal_Anomaly_Annotation.txt")
    segments, labels = ann.read_gt_arrays(a / "gt_segment_ucf.npy", a / "gt_label_ucf.npy")
    test_names = [Path(x).stem for x in (a / "Anomaly_Test.txt").read_text().split()]

    assert len(entries) == len(temporal) == len(segments) == len(test_names) == 290
    assert {e.crop for e in entries} == {5}
    assert {e.video for e in entries} == set(temporal) == set(test_names)
    assert sum(e.label == ann.UCF_NORMAL for e in entries) == 150
    for entry, segs, labs in zip(entries, segments, labels, strict=True):
        t = temporal[entry.video]
        if entry.label == ann.UCF_NORMAL:
            assert labs == [ann.GT_NORMAL_LABEL] and t.segments == []
        else:
            assert set(labs) == {entry.label} and segs == t.segments


def test_official_xd_annotations_parse_consistently(reference_dir: Path) -> None:
    a = reference_dir / "annotations"
    entries = ann.read_list_csv(a / "xd_CLIP_rgbtest.csv")
    segments, labels = ann.read_gt_arrays(a / "gt_segment.npy", a / "gt_label.npy")
    assert len(entries) == len(segments) == 800
    assert {e.crop for e in entries} == {0}
    assert sum(e.label == "A" for e in entries) == 300
    mismatched = []
    for entry, segs, labs in zip(entries, segments, labels, strict=True):
        assert all(0 <= s < e for s, e in segs)
        if set(labs) != set(ann.split_multilabel(entry.label)):
            mismatched.append(entry.video)
    # The published files disagree on exactly one video (list says B4 riot, gt says B1).
    assert mismatched == ["Ip.Man.2008__#01-40-37_01-42-07_label_B4-0-0"]


def test_split_multilabel() -> None:
    assert ann.split_multilabel("B2-G-0") == ["B2", "G"]
    assert ann.split_multilabel("A") == ["A"]
    assert ann.split_multilabel("B2-X-G", known=["B2", "G"]) == ["B2", "G"]


def test_generic_segment_csv(tmp_path: Path) -> None:
    path = tmp_path / "segments.csv"
    path.write_text("video,start_frame,end_frame,label\ncam1,4,8,Theft\ncam1,10,12,Fire\ncam2,,,\n")
    gt = ann.read_segment_csv(path)
    assert gt["cam1"].segments == [(4, 8), (10, 12)] and gt["cam1"].labels == ["Theft", "Fire"]
    assert gt["cam2"].segments == []
    frames = ann.frame_gt_in_list_order(["cam1", "cam2", "cam3"], gt, [16, 16, 16])
    expected = np.zeros(48, dtype=np.float32)
    expected[4:8] = expected[10:12] = 1
    np.testing.assert_array_equal(frames, expected)
    segs, labs = ann.gt_in_list_order(["cam1", "cam3"], gt, [16, 32])
    assert segs == [[(4, 8), (10, 12)], [(0, 32)]] and labs == [["Theft", "Fire"], ["A"]]


@pytest.mark.parametrize(
    "body",
    [
        "video,start,end,label\ncam1,1,2,x\n",  # wrong header
        "video,start_frame,end_frame,label\ncam1,5,3,x\n",  # end before start
        "video,start_frame,end_frame,label\ncam1,a,3,x\n",  # not a number
    ],
)
def test_generic_segment_csv_rejects_bad_rows(tmp_path: Path, body: str) -> None:
    path = tmp_path / "bad.csv"
    path.write_text(body)
    with pytest.raises(VadmonError):
        ann.read_segment_csv(path)


def test_list_csv_requires_header(tmp_path: Path) -> None:
    path = tmp_path / "list.csv"
    path.write_text("a.npy,Normal\n")
    with pytest.raises(VadmonError):
        ann.read_list_csv(path)
    with pytest.raises(VadmonError):
        ann.read_list_csv(tmp_path / "missing.csv")
