"""Features carry their origin: ``vadmon extract`` writes ``features.json``; train, eval and score
read it and refuse features of another tower or recipe in one line, before any work."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from tests import synth_videos as sv
from tests import train_helpers as th
from vadmon import __version__, cli
from vadmon.model import checkpoint as ckpt_mod
from vadmon.model.clip_factory import create_clip
from vadmon.model.crops import ClipPreprocess
from vadmon.research import provenance as prov
from vadmon.research.extract import feature_origin

TINY = ["--device", "cpu", "--no-progress"]


def _cli(capsys: pytest.CaptureFixture, *argv: str) -> tuple[int, str, str]:
    rc = cli.main(list(argv))
    out, err = capsys.readouterr()
    return rc, out, err


def _tiny_origin(crop_mode: str = "10crop", **changes) -> prov.FeatureOrigin:
    origin = feature_origin(
        clip_arch="vadmon-tiny",
        clip_pretrained=None,
        clip_checksum=prov.clip_checksum(create_clip("vadmon-tiny")),
        embed_dim=th.WIDTH,
        preprocess=ClipPreprocess(size=32),
        crop_mode=crop_mode,
        frames_per_snippet=1,
    )
    return replace(origin, **changes)


def _tree(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }


def test_extract_records_the_recipe_and_refuses_to_mix_another(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    sv.make_dataset(tmp_path / "videos", 2, seed=5, prefix="p", kind="dark")
    out = tmp_path / "features"
    # the spellings before 0.2 still work (hidden); the documented ones are --clip-*
    rc, _, err = _cli(capsys, "extract", str(tmp_path / "videos"), "-o", str(out),
                      "--arch", "vadmon-tiny", "--pretrained", "", "--crop-mode", "center",
                      "--frames-per-snippet", "2", *TINY)  # fmt: skip
    assert rc == 0, err
    side = json.loads((out / prov.SIDECAR).read_text())
    width = np.load(next(out.rglob("*__0.npy"))).shape[1]
    assert side["clip_arch"] == "vadmon-tiny" and side["clip_pretrained"] is None
    assert side["clip_checksum"] == prov.clip_checksum(create_clip("vadmon-tiny"))
    assert side["embed_dim"] == width == 64 and side["image_size"] == 32
    assert side["crop_mode"] == "center" and side["crops"] == [0]
    assert side["snippet_frames"] == 16 and side["frames_per_snippet"] == 2
    assert side["frame_offsets"] == [4, 12] and side["vadmon_version"] == __version__

    before = _tree(out)
    rc, out_text, err = _cli(capsys, "extract", str(tmp_path / "videos"), "-o", str(out),
                             "--clip-arch", "vadmon-tiny", "--clip-pretrained", "",
                             "--crop-mode", "center", *TINY)  # fmt: skip
    assert rc == 2 and len(err.strip().splitlines()) == 1, err
    assert "another recipe (frames_per_snippet: 2 there, 1 now)" in err
    assert _tree(out) == before  # nothing overwritten, nothing added

    with pytest.raises(SystemExit):
        cli.main(["extract", "--help"])
    help_text = capsys.readouterr().out
    assert "--clip-arch" in help_text and "--clip-pretrained" in help_text
    assert "--arch " not in help_text and "--pretrained " not in help_text


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Synthetic features laid out as ``vadmon extract`` leaves them (files + sidecar)."""
    root = tmp_path_factory.mktemp("prov")
    videos = th.make_videos(12, seed=3, prefix="v")
    train = th.write_features(videos, root / "train", crops=2, seed=4)
    test = th.write_features(th.make_videos(6, seed=5, prefix="t"), root / "test", crops=1, seed=6)
    prov.write_sidecar(root / "train", _tiny_origin())
    prov.write_sidecar(root / "test", _tiny_origin("center"))
    return {"root": root, "train": train, "test": test}


def _train_argv(data: dict[str, Path], name: str, *extra: str) -> list[str]:
    return ["train", "--train-list", str(data["train"]), "-o", str(data["root"] / f"{name}.pt"),
            "--work-dir", str(data["root"] / name), "--classes", th.CLASSES,
            "--visual-length", "32", "--epochs", "1", "--val-fraction", "0", "--val-crop", "1",
            *TINY, *extra]  # fmt: skip


@pytest.fixture(scope="module")
def model(data: dict[str, Path]) -> Path:
    """Trained through the CLI with no --clip-arch/--clip-pretrained: the sidecar names them."""
    assert cli.main(_train_argv(data, "fromsidecar")) == 0
    return data["root"] / "fromsidecar.pt"


def test_train_takes_the_tower_from_the_features(model: Path) -> None:
    ck = ckpt_mod.load(model)
    assert ck.config.clip_arch == "vadmon-tiny" and ck.config.visual_width == 64
    assert ck.meta["clip_checksum"] == _tiny_origin().clip_checksum
    assert ck.meta["features"]["crop_mode"] == "10crop"


def test_train_refuses_another_tower_before_any_work(
    data: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    rc, out, err = _cli(capsys, *_train_argv(data, "otherarch", "--clip-arch", "ViT-B-16"))
    assert rc == 2 and len(err.strip().splitlines()) == 1
    assert "--clip-arch ViT-B-16 but the training features were extracted with vadmon-tiny" in err
    assert "training on" not in out and not (data["root"] / "otherarch").exists()

    # Same architecture, other weights: caught by the weights hash, still before training.
    other = tmp_path / "other"
    list_path = th.write_features(th.make_videos(8, seed=9, prefix="o"), other, crops=2, seed=1)
    prov.write_sidecar(other, _tiny_origin(clip_pretrained="x.bin", clip_checksum="0" * 16))
    argv = _train_argv(data, "otherweights", "--clip-pretrained", "")  # not the x.bin weights
    argv[argv.index("--train-list") + 1] = str(list_path)
    rc, out, err = _cli(capsys, *argv)
    assert rc == 2 and len(err.strip().splitlines()) == 1
    assert "extracted with other CLIP weights (vadmon-tiny/x.bin" in err
    assert "training on" not in out and not (data["root"] / "otherweights").exists()

    # Test features of another recipe than the training features: refused before training.
    argv = _train_argv(data, "othertest", "--test-list", str(list_path))
    rc, out, err = _cli(capsys, *argv)
    assert rc == 2 and "test features differ from the training features (clip_checksum" in err
    assert "training on" not in out and not (data["root"] / "othertest").exists()

    # A list that mixes both recipes is refused too.
    argv = _train_argv(data, "otherweights", "--clip-pretrained", "")
    mixed = tmp_path / "mixed.csv"
    rows = data["train"].read_text().splitlines() + list_path.read_text().splitlines()[1:]
    mixed.write_text("\n".join(rows) + "\n")
    argv[argv.index("--train-list") + 1] = str(mixed)
    rc, _, err = _cli(capsys, *argv)
    assert rc == 2 and "the train list mixes features of two recipes (clip_checksum" in err


def test_eval_and_score_refuse_features_of_another_tower(
    data: dict[str, Path], model: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    report = tmp_path / "r.json"
    rc, out, err = _cli(capsys, "eval", str(model), "--test-list", str(data["test"]),
                        "--crop", "0", "--report", str(report), *TINY)  # fmt: skip
    assert rc == 0, err
    assert json.loads(report.read_text())["features"]["crop_mode"] == "center"
    assert "no features.json" not in out

    cases = {
        "weights": (_tiny_origin("center", clip_checksum="f" * 16), "other CLIP weights"),
        "arch": (
            _tiny_origin("center", clip_arch="ViT-B-16", embed_dim=512),
            "extracted with CLIP ViT-B-16",
        ),
    }
    for name, (origin, message) in cases.items():
        feats = tmp_path / name
        list_path = th.write_features(th.make_videos(4, seed=2, prefix=name), feats, 1, seed=3)
        prov.write_sidecar(feats, origin)
        rc, _, err = _cli(capsys, "eval", str(model), "--test-list", str(list_path),
                          "--crop", "0", "--report", str(feats / "r.json"), *TINY)  # fmt: skip
        assert rc == 2 and message in err and len(err.strip().splitlines()) == 1, err
        assert not (feats / "r.json").exists()
        npz = feats / "s.npz"
        one = next(feats.glob("*__0.npy"))
        rc, _, err = _cli(capsys, "score", str(model), str(one), "-o", str(npz), "--device", "cpu")
        assert rc == 2 and message in err and not npz.exists(), err


def test_one_flag_vocabulary_and_device_default() -> None:
    """The CLIP tower is --clip-arch/--clip-pretrained wherever a command builds one (the
    config's model.clip_arch/model.clip_pretrained), and --device defaults to auto everywhere."""
    from vadmon.config.models import ModelConfig

    parser = cli.build_parser()
    minimal = {
        "extract": ["v.mp4", "-o", "out"],
        "train": ["--train-list", "l.csv", "-o", "m.pt"],
        "eval": ["m.pt", "--test-list", "l.csv"],
        "score": ["m.pt", "f.npy", "-o", "s.npz"],
    }
    for command, argv in minimal.items():
        args = parser.parse_args([command, *argv])
        assert args.device == "auto", command
    for command in ("extract", "train"):
        args = parser.parse_args(
            [command, *minimal[command], "--clip-arch", "A", "--clip-pretrained", "w.bin"]
        )
        assert (args.clip_arch, args.clip_pretrained) == ("A", "w.bin")
    assert {"clip_arch", "clip_pretrained"} <= set(ModelConfig.model_fields)
    assert ModelConfig.model_fields["device"].default == "auto"
