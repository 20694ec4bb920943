"""The `vadmon` command as a user meets it: version, secrets, events, config check, help."""

from __future__ import annotations

import argparse
import re

import pytest
from config_support import write_config_file

from vadmon.alerts.outbox import Outbox
from vadmon.alerts.signing import decode_secret
from vadmon.cli import build_parser, main
from vadmon.config import load_config, load_config_text
from vadmon.config.load import ConfigErrors

REPO_README = "README.md"


def run_cli(capsys, *argv: str) -> tuple[int, str, str]:
    try:
        code = main(list(argv))
    except SystemExit as exc:  # argparse's --version / --help
        code = int(exc.code or 0)
    out = capsys.readouterr()
    return code, out.out, out.err


def test_version(capsys):
    from vadmon import __version__

    code, out, _ = run_cli(capsys, "--version")
    assert code == 0 and out.strip() == f"vadmon {__version__}"


def test_secret_generate_is_accepted_by_config_and_signing(capsys):
    code, out, _ = run_cli(capsys, "secret", "generate")
    secret = out.strip()
    assert code == 0 and secret.startswith("whsec_")
    assert len(decode_secret(secret)) == 32
    assert run_cli(capsys, "secret", "generate")[1].strip() != secret  # random each time
    text = f"""cameras:
  a: {{source: "synthetic:"}}
model: {{mode: zeroshot, clip_pretrained: openai}}
webhooks:
  - {{name: x, url: "https://hooks.example.com/a", secret: "{secret}"}}
"""
    assert load_config_text(text).webhooks[0].signing_key() == decode_secret(secret)
    code, _, err = run_cli(capsys, "secret", "generate", "--bytes", "8")
    assert code == 2 and err.count("\n") == 1 and "24 to 64" in err


def write_events(path, n: int) -> None:
    outbox = Outbox(path)
    for i in range(n):
        ev = {"id": f"e{i}", "camera": "door", "label": "Fighting", "label_prob": 0.8,
              "start_ts": 1_700_000_000.0 + i, "end_ts": None, "peak_score": 0.9}  # fmt: skip
        outbox.record_event(ev, "open")
    outbox.close()


def test_events_finds_the_outbox_through_the_config(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("VADMON_DB", raising=False)
    config = write_config_file(tmp_path / "m.yaml", {
        "cameras": {"a": {"source": "synthetic:"}},
        "model": {"mode": "zeroshot", "clip_pretrained": "openai"},
        "storage": {"dir": tmp_path / "store"},
    })  # fmt: skip
    (tmp_path / "store").mkdir()
    write_events(load_config(config).storage.outbox_db, 3)
    code, out, err = run_cli(capsys, "events", "--config", str(config))
    assert code == 0, err
    assert [line.split()[0] for line in out.splitlines()[1:]] == ["e2", "e1", "e0"]
    code, out, _ = run_cli(capsys, "events", "dead", "--config", str(config))
    assert code == 0 and out.strip() == "(none)"


def test_events_bad_db_is_one_line(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("VADMON_DB", raising=False)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "README.md").write_text("# not a database\n" * 100)
    for argv in (["--db", "README.md"], [], ["dead", "--db", "README.md"]):
        code, out, err = run_cli(capsys, "events", *argv)
        assert code == 2 and out == "" and err.count("\n") == 1, (argv, err)
        assert "Traceback" not in err and "--config" in err
    assert "not a vadmon outbox" in run_cli(capsys, "events", "--db", "README.md")[2]
    assert "runs/outbox.sqlite" in run_cli(capsys, "events")[2]  # the default a monitor writes


def all_parsers() -> list[argparse.ArgumentParser]:
    todo, seen = [build_parser()], []
    while todo:
        parser = todo.pop()
        seen.append(parser)
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                todo.extend(action.choices.values())
    return seen


def test_help_texts_are_plain_and_choices_described():
    parsers = all_parsers()
    assert len(parsers) > 15
    for parser in parsers:
        text = parser.format_help()
        assert "``" not in text and "`" not in text, parser.prog
    run = next(p for p in parsers if p.prog.endswith(" run"))
    flags = {a.option_strings[0]: a.help for a in run._actions if a.option_strings}
    assert flags["--dashboard"] and flags["--no-dashboard"]
    for parser in parsers:
        for action in parser._actions:
            if "--preset" in action.option_strings:
                assert "ucf = UCF-Crime" in action.help and "xd = XD-Violence" in action.help


BAD = """defaults:
  alerts: {threshold: 1.5}
cameras:
  a:
    source: 3.5
    fps: "fast"
  b:
    source: "synthetic:"
    fpz: 3
model:
  mode: zeroshot
  clip_pretrained: openai
  window: 0
"""


def test_config_check_reports_every_problem_once_with_the_value(tmp_path, capsys):
    path = tmp_path / "bad.yaml"
    path.write_text(BAD)
    code, out, err = run_cli(capsys, "config", "check", str(path))
    lines = err.splitlines()
    assert code == 2 and out == ""
    # threshold (once, not per camera), source (once, not per union member), fps, fpz, window
    assert lines[-1] == f"{path}: 5 problems"
    problems = lines[:-1]
    assert len(problems) == 5
    assert re.search(r"\(got 1\.5\).*bad\.yaml:2 ", problems[0])
    assert re.search(r"\(got 3\.5\).*bad\.yaml:5 ", problems[1])
    assert "(got 'fast')" in problems[2] and "did you mean 'fps'" in problems[3]
    assert "(got 0)" in problems[4]
    with pytest.raises(ConfigErrors) as info:  # what `run` shows: the first, and a count
        load_config_text(BAD)
    assert len(info.value.problems) == 5 and "and 4 more" in info.value.line()


def test_config_check_echo_keeps_credentials_out(tmp_path, capsys):
    path = tmp_path / "c.yaml"
    path.write_text(
        'cameras:\n  a: {source: "rtsp://admin:hunter2@10.0.0.5/s", fps: -1}\n'
        "model: {mode: zeroshot, clip_pretrained: openai}\n"
        "webhooks:\n  - {name: x, url: https://h.example.com/, secret: whsec_hunter2!!}\n"
    )
    code, _, err = run_cli(capsys, "config", "check", str(path))
    assert code == 2 and "(got -1" in err and "hunter2" not in err


def test_config_check_finds_missing_files(tmp_path, capsys):
    path = tmp_path / "c.yaml"
    ckpt = tmp_path / "m.pt"
    path.write_text(
        f"cameras:\n  a: {{source: {tmp_path / 'nope.mp4'}}}\n  b: {{source: 'synthetic:'}}\n"
        f"model: {{mode: vadclip, checkpoint: {ckpt}}}\n"
    )
    code, _, err = run_cli(capsys, "config", "check", str(path))
    assert code == 2 and err.splitlines()[-1].endswith("2 problems")
    assert "checkpoint file not found" in err and "video file not found" in err
    assert "cameras.b" not in err  # a generated source is not a file
    ckpt.write_bytes(b"x")
    (tmp_path / "nope.mp4").write_bytes(b"x")
    code, out, _ = run_cli(capsys, "config", "check", str(path))
    assert code == 0 and "OK" in out
