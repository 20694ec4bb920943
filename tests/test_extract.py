"""Feature extraction: crop geometry, CLIP preprocessing, real videos through a tiny real CLIP,
broken files, and interruption safety (exception and SIGKILL)."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from extract_support import read_frames

from tests.tiny_clip import tiny_clip
from vadmon.errors import VadmonError
from vadmon.model import crops as cr
from vadmon.research import extract as ex
from vadmon.research.annotations import read_list_csv
from vadmon.research.videos import label_mapping


@pytest.fixture(scope="module")
def clip():
    encode, cfg = tiny_clip()
    return encode, cr.ClipPreprocess.from_cfg(cfg)


def _write_video(path: Path, frames: int, seed: int, size: tuple[int, int] = (64, 48)) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, size)
    rng = np.random.default_rng(seed)
    for _ in range(frames):
        writer.write(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8))
    writer.release()
    return path


def _npy_files(root: Path) -> dict[str, np.ndarray]:
    return {str(p.relative_to(root)): np.load(p) for p in sorted(root.rglob("*.npy"))}


# --------------------------------------------------------------------------- crops


def test_crop_geometry_and_mirroring() -> None:
    bgr = np.random.default_rng(1).integers(0, 256, (256, 340, 3), dtype=np.uint8)
    rgb = cr.resize_frame(bgr)
    np.testing.assert_array_equal(rgb, bgr[..., ::-1])  # same size: only BGR→RGB
    expected = [
        rgb[16:240, 58:282],
        rgb[0:224, 0:224],
        rgb[0:224, 116:340],
        rgb[32:256, 0:224],
        rgb[32:256, 116:340],
    ]
    for i, want in enumerate(expected):
        np.testing.assert_array_equal(cr.crop(rgb, i), want)
        np.testing.assert_array_equal(cr.crop(rgb, i + 5), want[:, ::-1])
    np.testing.assert_array_equal(cr.crops_of(bgr, (3, 0)), np.stack([expected[3], expected[0]]))


def test_quadrant_frame_lands_in_the_right_crops() -> None:
    # Quadrant colours (RGB) chosen so each corner crop is dominated by its own quadrant.
    rgb = np.zeros((256, 340, 3), np.uint8)
    rgb[:128, :170], rgb[:128, 170:] = (255, 0, 0), (0, 255, 0)
    rgb[128:, :170], rgb[128:, 170:] = (0, 0, 255), (255, 255, 0)
    rgb[118:138, 160:180] = (255, 255, 255)  # centre mark
    c = cr.crops_of(rgb[..., ::-1].copy(), range(10))  # input is BGR
    assert tuple(c[1][0, 0]) == (255, 0, 0) and tuple(c[2][0, -1]) == (0, 255, 0)
    assert tuple(c[3][-1, 0]) == (0, 0, 255) and tuple(c[4][-1, -1]) == (255, 255, 0)
    assert tuple(c[0][112, 112]) == (255, 255, 255)
    # mirrored top-left: its left edge is the top-left crop's right edge
    np.testing.assert_array_equal(c[6][:, 0], c[1][:, -1])


def test_resize_from_camera_size_and_colour_order() -> None:
    blue_bgr = np.zeros((576, 768, 3), np.uint8)
    blue_bgr[..., 0] = 255
    rgb = cr.resize_frame(blue_bgr)
    assert rgb.shape == (256, 340, 3)
    assert tuple(rgb[100, 100]) == (0, 0, 255)


def test_clip_preprocess_normalises_and_resizes() -> None:
    white = np.full((2, 224, 224, 3), 255, np.uint8)
    p224 = cr.ClipPreprocess.from_cfg(
        {"size": (224, 224), "mean": (0.5, 0.4, 0.3), "std": (0.5, 0.2, 0.1)}
    )
    x = p224(white)
    assert x.shape == (2, 3, 224, 224) and x.dtype == torch.float32
    for ch, want in enumerate([(1 - 0.5) / 0.5, (1 - 0.4) / 0.2, (1 - 0.3) / 0.1]):
        assert torch.allclose(x[:, ch], torch.tensor(want))
    y = cr.ClipPreprocess(size=32)(white)
    assert y.shape == (2, 3, 32, 32)
    assert torch.allclose(
        y, cr.ClipPreprocess(size=32)(white[:, :32, :32])
    )  # constant stays constant


def test_snippet_offsets() -> None:
    assert ex.snippet_offsets(1) == (8,)
    assert ex.snippet_offsets(2) == (4, 12)
    assert ex.snippet_offsets(16) == tuple(range(16))
    for bad in (0, 17):
        with pytest.raises(ValueError):
            ex.snippet_offsets(bad)


# --------------------------------------------------------------------------- real videos


def test_vtest_10crop_matches_direct_encoding(tmp_path: Path, vtest_path: Path, clip) -> None:
    encode, prep = clip
    out = tmp_path / "out"
    summary = ex.extract_videos([vtest_path], out, encode, preprocess=prep, batch_size=32)
    assert summary.extracted == [vtest_path] and not summary.failed
    files = sorted(out.glob("*.npy"))
    assert [f.name for f in files] == [f"vtest__{c}.npy" for c in range(10)]
    arrays = [np.load(f) for f in files]
    assert all(a.shape == (795 // 16, 64) and a.dtype == np.float32 for a in arrays)

    frames = read_frames(vtest_path)
    for i in (0, 17, 48):  # row i = middle frame (offset 8) of snippet i, every crop
        with torch.inference_mode():
            want = encode(prep(cr.crops_of(frames[16 * i + 8], range(10)))).numpy()
        got = np.stack([a[i] for a in arrays])
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)

    rows = read_list_csv(out / "list.csv")
    assert [(Path(r.path), r.label) for r in rows] == [(f.resolve(), "data") for f in files]
    assert [r.path for r in read_list_csv(out / "list__5.csv")] == [str(files[5].resolve())]


def test_center_mode_averages_k_frames(tmp_path: Path, clip) -> None:
    encode, prep = clip
    video = _write_video(tmp_path / "in" / "Cam" / "a.avi", frames=40, seed=3)  # 2 snippets + 8
    out = tmp_path / "out"
    ex.extract_videos(
        [tmp_path / "in"],
        out,
        encode,
        preprocess=prep,
        crop_mode="center",
        frames_per_snippet=2,
        batch_size=3,
    )
    got = np.load(out / "Cam" / "a__0.npy")
    assert sorted(p.name for p in out.rglob("*.npy")) == ["a__0.npy"]
    frames = read_frames(video)
    for i in range(2):
        with torch.inference_mode():
            pair = encode(
                prep(np.concatenate([cr.crops_of(frames[16 * i + o], (0,)) for o in (4, 12)]))
            )
        np.testing.assert_allclose(got[i], pair.mean(0).numpy(), rtol=1e-4, atol=1e-5)
    assert got.shape == (2, 64)
    assert read_list_csv(out / "list__0.csv")[0].label == "Cam"


def test_corrupt_videos_are_reported_and_skipped(tmp_path: Path, clip) -> None:
    encode, prep = clip
    src = tmp_path / "in"
    good = _write_video(src / "Normal" / "good.avi", frames=32, seed=1)
    (src / "Normal" / "noise.avi").write_bytes(np.random.default_rng(0).bytes(5000))
    (src / "Fight" / "cut.avi").parent.mkdir(parents=True)
    (src / "Fight" / "cut.avi").write_bytes(good.read_bytes()[:2000])
    (src / "Fight" / "short.avi").write_bytes(b"")
    _write_video(src / "Fight" / "tiny.avi", frames=10, seed=2)  # < 16 frames: no snippet
    good2 = _write_video(src / "Fight" / "ok.avi", frames=48, seed=4)

    summary = ex.extract_videos(
        [src], tmp_path / "out", encode, preprocess=prep, crop_mode="center"
    )
    assert sorted(summary.extracted) == sorted([good, good2])
    assert sorted(p.name for p, _ in summary.failed) == [
        "cut.avi",
        "noise.avi",
        "short.avi",
        "tiny.avi",
    ]
    assert all(reason for _, reason in summary.failed)
    assert "failed 4" in summary.report() and "noise.avi" in summary.report()
    assert sorted(_npy_files(tmp_path / "out")) == ["Fight/ok__0.npy", "Normal/good__0.npy"]
    labels = [(Path(r.path).name, r.label) for r in read_list_csv(tmp_path / "out" / "list.csv")]
    assert labels == [("ok__0.npy", "Fight"), ("good__0.npy", "Normal")]


def test_duplicate_output_names_rejected(tmp_path: Path, clip) -> None:
    a = _write_video(tmp_path / "x" / "v.avi", frames=16, seed=0)
    b = _write_video(tmp_path / "y" / "v.avi", frames=16, seed=1)
    with pytest.raises(VadmonError):
        ex.extract_videos([a, b], tmp_path / "out", clip[0], preprocess=clip[1])


def test_label_mapping(tmp_path: Path) -> None:
    mapping = tmp_path / "labels.csv"
    mapping.write_text("video,label\nv1,Fight\n")
    fn = label_mapping(mapping)
    assert fn(Path("/a/b/v1.mp4")) == "Fight"
    with pytest.raises(VadmonError):
        fn(Path("/a/b/v2.mp4"))


# --------------------------------------------------------------------------- interruption


def _three_videos(root: Path) -> list[Path]:
    return [_write_video(root / "Cam" / f"v{i}.avi", frames=48, seed=10 + i) for i in range(3)]


def test_interrupted_by_encoder_error_then_resumed(tmp_path: Path, clip) -> None:
    encode, prep = clip
    videos = _three_videos(tmp_path / "in")
    # batch 10 = exactly one 10-crop snippet per batch, so every run batches identically
    reference = tmp_path / "ref"
    ex.extract_videos(videos, reference, encode, preprocess=prep, batch_size=10)
    calls = 0

    def failing(batch: torch.Tensor) -> torch.Tensor:
        nonlocal calls
        calls += 1
        if calls > 4:  # v0 (3 snippets) done, v1 half-way
            raise RuntimeError("device lost")
        return encode(batch)

    out = tmp_path / "out"
    with pytest.raises(RuntimeError, match="device lost"):
        ex.extract_videos(videos, out, failing, preprocess=prep, batch_size=10)
    assert sorted(_npy_files(out)) == [f"v0__{c}.npy" for c in range(10)]

    summary = ex.extract_videos(videos, out, encode, preprocess=prep, batch_size=10)
    assert summary.skipped == videos[:1] and summary.extracted == videos[1:]
    _assert_same_tree(out, reference)


def test_sigkill_midway_then_resumed(tmp_path: Path, clip, subprocess_env) -> None:
    encode, prep = clip
    videos = _three_videos(tmp_path / "in")
    reference = tmp_path / "ref"
    ex.extract_videos(videos, reference, encode, preprocess=prep, batch_size=10)

    out, marker = tmp_path / "out", tmp_path / "hanging"
    cmd = [sys.executable, "-m", "tests.tiny_clip", str(out), *map(str, videos)]
    cmd += ["--hang-after", "4", "--marker", str(marker)]
    proc = subprocess.Popen(cmd, env=subprocess_env, cwd=ex.__file__.rsplit("/vadmon/", 1)[0])
    try:
        deadline = time.monotonic() + 90
        while not marker.exists() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert marker.exists(), "extraction subprocess never reached the hang point"
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    assert sorted(_npy_files(out)) == [f"v0__{c}.npy" for c in range(10)]
    # A kill during a write leaves a temporary behind; plant one as such a kill would.
    stale = out / "v1__3.npy.tmp"
    stale.write_bytes(b"\x93NUMPY partial")

    summary = ex.extract_videos(videos, out, encode, preprocess=prep, batch_size=10)
    assert summary.skipped == videos[:1] and summary.extracted == videos[1:]
    _assert_same_tree(out, reference)


def _assert_same_tree(out: Path, reference: Path) -> None:
    assert not list(out.rglob("*.tmp"))
    got, want = _npy_files(out), _npy_files(reference)
    assert sorted(got) == sorted(want) and len(got) == 30
    for name in want:
        np.testing.assert_array_equal(got[name], want[name], err_msg=name)
    for csv_name in ["list.csv", "list__0.csv", "list__9.csv"]:
        rows = [
            (Path(r.path).relative_to(out.resolve()), r.label)
            for r in read_list_csv(out / csv_name)
        ]
        ref = [
            (Path(r.path).relative_to(reference.resolve()), r.label)
            for r in read_list_csv(reference / csv_name)
        ]
        assert rows == ref


# --------------------------------------------------------------------------- CLI


def _parse(argv: list[str]):
    import argparse

    from vadmon.commands import extract as cmd

    parser = argparse.ArgumentParser()
    cmd.register(parser.add_subparsers(dest="command"))
    return parser.parse_args(["extract", *argv])


def test_cli_arguments_and_input_errors_before_model_load(tmp_path: Path) -> None:
    args = _parse(
        ["a.mp4", "dir", "-o", "out", "--crop-mode", "center", "--frames-per-snippet", "4"]
    )
    assert args.inputs == [Path("a.mp4"), Path("dir")] and args.out == Path("out")
    assert (args.crop_mode, args.frames_per_snippet) == ("center", 4)
    assert (args.clip_arch, args.clip_pretrained, args.device) == ("ViT-B-16", "openai", "auto")

    empty = tmp_path / "empty"
    empty.mkdir()
    _write_video(tmp_path / "vids" / "v9.avi", frames=16, seed=0)
    (tmp_path / "labels.csv").write_text("video,label\nother,Fight\n")
    for argv in (
        [str(tmp_path / "missing.avi"), "-o", str(tmp_path / "o")],
        [str(empty), "-o", str(tmp_path / "o")],
        [
            str(tmp_path / "vids"),
            "-o",
            str(tmp_path / "o"),
            "--labels",
            str(tmp_path / "labels.csv"),
        ],
        [str(tmp_path / "vids"), "-o", str(tmp_path / "o"), "--frames-per-snippet", "0"],
    ):
        args = _parse(argv)
        with pytest.raises(VadmonError):
            args.handler(args)
    assert not (tmp_path / "o").exists()
