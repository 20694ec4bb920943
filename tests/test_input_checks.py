"""Bad input is found before any work: every list row, the sampling of scored features, the
missing sidecar of ``score``."""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from tests import train_helpers as th
from vadmon import cli
from vadmon.errors import VadmonError
from vadmon.model.clip_factory import create_clip
from vadmon.research import provenance as prov
from vadmon.research.list_check import check_list_rows


def _run(capsys: pytest.CaptureFixture, *argv: str) -> tuple[int, str, str]:
    rc = cli.main(list(argv))
    out, err = capsys.readouterr()
    return rc, out, err


def _train_argv(listed: Path, root: Path, *extra: str) -> list[str]:
    return ["train", "--train-list", str(listed), "-o", str(root / "m.pt"),
            "--work-dir", str(root / "run"), "--clip-arch", "vadmon-tiny",
            "--clip-pretrained", "", "--classes", th.CLASSES, "--visual-length", "32",
            "--epochs", "1", "--val-fraction", "0", "--device", "cpu", *extra]  # fmt: skip


def _list(tmp_path: Path, n: int = 6, crops: int = 2) -> Path:
    return th.write_features(th.make_videos(n, seed=3, prefix="c"), tmp_path / "f", crops, seed=4)


def _append(listed: Path, row: str) -> int:
    """Append one row; returns its line number."""
    lines = listed.read_text().splitlines()
    listed.write_text("\n".join([*lines, row]) + "\n")
    return len(lines) + 1


def test_every_kind_of_bad_row_is_one_error_naming_it(tmp_path: Path) -> None:
    listed = _list(tmp_path)
    assert check_list_rows(listed, th.WIDTH).rows == 12
    good = Path(listed.read_text().splitlines()[3].split(",")[0])
    cases = {
        "missing": (None, "feature file not found"),
        "truncated": (good.read_bytes()[:200], "cannot read feature file"),
        "flat": (np.zeros(5, np.float32), "has shape (5,), expected [T, D]"),
        "text": (b"not numpy", "cannot read feature file"),
        "nan": (np.vstack([np.zeros((5000, th.WIDTH)), [[np.nan] * th.WIDTH]]), "NaN or inf"),
        "narrow": (np.zeros((9, 32), np.float32), "32-wide but the model's CLIP embeds 64"),
    }
    for name, (content, message) in cases.items():
        bad_list = tmp_path / f"{name}.csv"
        bad_list.write_text(listed.read_text())
        path = tmp_path / f"{name}__0.npy"
        if isinstance(content, bytes):
            path.write_bytes(content)
        elif content is not None:
            np.save(path, content)
        line = _append(bad_list, f"{path},Normal")
        with pytest.raises(VadmonError, match=re.escape(message)) as exc:
            check_list_rows(bad_list, th.WIDTH)
        assert exc.value.where == f"{bad_list}:{line}" and "\n" not in exc.value.line()
    # A crop shorter than its sibling crop: views of the same frames must agree.
    first = Path(listed.read_text().splitlines()[1].split(",")[0])  # cno000__0.npy
    np.save(first.with_name("cno000__1.npy"), np.load(first)[:-1])
    with pytest.raises(VadmonError, match="has .* snippets but another crop of 'cno000'"):
        check_list_rows(listed, th.WIDTH)


def test_train_with_a_missing_row_is_one_line_before_any_work(tmp_path: Path, capsys) -> None:
    """The issue's repro: a row pointing nowhere gave a 31-line Traceback."""
    listed = _list(tmp_path)
    line = _append(listed, "/nowhere/y__0.npy,Event")
    rc, out, err = _run(capsys, *_train_argv(listed, tmp_path))
    assert rc == 2 and len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert "/nowhere/y__0.npy" in err and f"{listed}:{line}" in err
    assert not (tmp_path / "run").exists() and "training on" not in out


def test_train_with_a_corrupt_later_crop_stops_before_epoch_1(tmp_path: Path, capsys) -> None:
    listed = _list(tmp_path)
    last = Path(listed.read_text().splitlines()[-1].split(",")[0])
    last.write_bytes(last.read_bytes()[:-64])  # truncated: header promises more rows
    rc, out, err = _run(capsys, *_train_argv(listed, tmp_path))
    assert rc == 2 and len(err.strip().splitlines()) == 1
    assert last.name in err and f"{listed}:13" in err and "cannot read feature file" in err
    assert not (tmp_path / "run").exists()


@pytest.fixture(scope="module")
def sampled(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A tiny checkpoint trained on features with a sidecar (1 frame per snippet), and test
    features of the same tower sampled with 8 frames per snippet."""
    root = tmp_path_factory.mktemp("sampled")
    clip = create_clip("vadmon-tiny", None)
    origin = prov.FeatureOrigin(
        clip_arch="vadmon-tiny", clip_pretrained=None, clip_checksum=prov.clip_checksum(clip),
        embed_dim=th.WIDTH, image_size=32, mean=(0.5,) * 3, std=(0.5,) * 3, crop_mode="center",
        crops=(0,), snippet_frames=16, frames_per_snippet=1, frame_offsets=(8,),
    )  # fmt: skip
    train_list = th.write_features(th.make_videos(8, seed=1, prefix="s"), root / "tr", 1, seed=2)
    prov.write_sidecar(root / "tr", origin)
    videos = th.make_videos(4, seed=3, prefix="u")
    test_list = th.write_features(videos, root / "te", 1, seed=4)
    eight = replace(origin, frames_per_snippet=8, frame_offsets=(0, 2, 4, 6, 8, 10, 12, 14))
    prov.write_sidecar(root / "te", eight)
    bare_list = th.write_features(videos, root / "bare", 1, seed=4)
    rc = cli.main(_train_argv(train_list, root, "--val-crop", "0"))
    assert rc == 0
    return {"ckpt": root / "m.pt", "test": test_list, "bare": bare_list, "root": root}


def test_eval_and_score_refuse_another_sampling(sampled: dict[str, Path], capsys) -> None:
    ckpt, test = str(sampled["ckpt"]), str(sampled["test"])
    rc, out, err = _run(capsys, "eval", ckpt, "--test-list", test, "--crop", "0")
    assert rc == 2 and len(err.strip().splitlines()) == 1 and out == ""
    assert "differ from the training features (frames_per_snippet: 8 vs 1)" in err
    feature = test.replace("list.csv", "uno000__0.npy")
    out_npz = sampled["root"] / "s.npz"
    rc, out, err = _run(capsys, "score", ckpt, feature, "-o", str(out_npz))
    assert rc == 2 and "frames_per_snippet: 8 vs 1" in err and not out_npz.exists()


def test_score_notes_features_without_a_sidecar(sampled: dict[str, Path], capsys) -> None:
    feature = sampled["bare"].with_name("uno000__0.npy")
    out_npz = sampled["root"] / "bare.npz"
    rc, out, err = _run(capsys, "score", str(sampled["ckpt"]), str(feature), "-o", str(out_npz))
    assert rc == 0 and out_npz.is_file() and "scored" in out
    assert "no features.json" in err and "cannot be checked" in err
