"""Sources and failure classification against real files and a real RTSP server."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest

from tests.capture_support import RtspServer, free_port, rtsp_servers
from vadmon.capture.probe import classify_stream_failure
from vadmon.capture.source import (
    ErrorKind,
    FileSource,
    SourceError,
    StreamSource,
    SyntheticSource,
    open_source,
)
from vadmon.redact import redact_url, url_secrets


@pytest.fixture()
def rtsp_server(vtest_path: Path) -> Iterator[Callable[..., RtspServer]]:
    yield from rtsp_servers(vtest_path)


def test_redaction_and_secrets() -> None:
    url = "rtsp://bob:p%40ss%3Aw%25rd%2Fx@10.0.0.5:554/live?x=1"
    assert redact_url(url) == "rtsp://***@10.0.0.5:554/live?x=1"
    assert set(url_secrets(url)) == {"p%40ss%3Aw%25rd%2Fx", "p@ss:w%rd/x"}
    assert redact_url("rtsp://10.0.0.5/live") == "rtsp://10.0.0.5/live"
    src = StreamSource(url, 10000, 5000, "tcp")
    assert "p%40ss" not in repr(src) and "p%40ss" not in src.description


def test_open_source_dispatch(tmp_path: Path) -> None:
    assert isinstance(open_source("rtsp://h/x"), StreamSource)
    assert isinstance(open_source("synthetic:w=64&h=48"), SyntheticSource)
    assert isinstance(open_source(str(tmp_path / "a.mp4")), FileSource)
    with pytest.raises(ValueError):
        open_source("synthetic:bogus=1")
    with pytest.raises(ValueError):
        open_source("gopher://x/y")


def test_synthetic_frames_move_and_flash() -> None:
    src = SyntheticSource(width=64, height=48, fps=0, flash_every_s=1.0, flash_frames=2)
    src.fps = 10  # render() uses fps for the flash period; no pacing needed here
    a, b = src.render(1), src.render(3)
    assert a.shape == (48, 64, 3) and not np.array_equal(a, b)
    flash = src.render(10)
    assert (flash[:, :, 2] == 255).all() and (flash[:, :, :2] == 0).all()


def test_file_source_reads_real_video_and_classifies(vtest_path: Path, tmp_path: Path) -> None:
    src = FileSource(vtest_path, loop=False, realtime=False)
    src.open()
    frame, ts = src.read()
    assert frame.shape == (576, 768, 3) and src.fps == pytest.approx(10) and ts > 0
    src.close()
    with pytest.raises(SourceError) as missing:
        FileSource(tmp_path / "nope.avi").open()
    assert missing.value.kind is ErrorKind.NOT_FOUND
    corrupt = tmp_path / "corrupt.avi"
    corrupt.write_bytes(vtest_path.read_bytes()[:2000])
    with pytest.raises(SourceError) as bad:
        src = FileSource(corrupt, loop=False, realtime=False)
        src.open()
        src.read()
    assert bad.value.kind in (ErrorKind.CODEC, ErrorKind.ENDED)


def test_classify_refused() -> None:
    kind, _ = classify_stream_failure(f"rtsp://127.0.0.1:{free_port()}/x", 2)
    assert kind is ErrorKind.REFUSED


@pytest.mark.slow
def test_classify_against_real_rtsp_server(rtsp_server: Callable[..., RtspServer]) -> None:
    server = rtsp_server(user="bob", password="p@ss:w%rd/x")
    assert classify_stream_failure(server.url(password="wrong"), 5)[0] is ErrorKind.AUTH
    right = server.url().replace("/test", "/missing")
    assert classify_stream_failure(right, 5)[0] is ErrorKind.NOT_FOUND
    src = StreamSource(server.url(password="wrong"), 5000, 5000, "tcp")
    with pytest.raises(SourceError) as exc:
        src.open()
    assert exc.value.kind is ErrorKind.AUTH and "wrong" not in str(exc.value)
    good = StreamSource(server.url(), 10000, 5000, "tcp")
    good.open()
    frame, _ = good.read()
    good.close()
    assert frame.shape == (576, 768, 3)
