"""Credential redaction: passwords with @ : % / must never survive, raw or percent-encoded."""

from __future__ import annotations

from urllib.parse import quote

import pytest

from vadmon.redact import redact_text, redact_url

TRICKY = "p@ss:w%rd/x"


@pytest.mark.parametrize(
    "url, expected",
    [
        (f"rtsp://admin:{TRICKY}@10.0.0.5:554/stream1", "rtsp://***@10.0.0.5:554/stream1"),
        (
            f"rtsp://admin:{quote(TRICKY, safe='')}@cam.local:554/s?x=1",
            "rtsp://***@cam.local:554/s?x=1",
        ),
        (f"rtsp://{TRICKY}@[fe80::1]:554/live", "rtsp://***@[fe80::1]:554/live"),
        (f"http://user:{TRICKY}@host", "http://***@host"),
        ("rtsp://10.0.0.5:554/stream1", "rtsp://10.0.0.5:554/stream1"),
        ("/videos/a@b.mp4", "/videos/a@b.mp4"),
        (3, "3"),
        (
            "https://cam/snap.jpg?user=a&password=hunter22&q=1",
            "https://cam/snap.jpg?user=a&password=***&q=1",
        ),
    ],
)
def test_redact_url(url: str | int, expected: str) -> None:
    assert redact_url(url) == expected


@pytest.mark.parametrize("password", [TRICKY, "a@b@c:d", "::@@//%%", "pw/with/slashes@"])
def test_no_password_fragment_survives(password: str) -> None:
    for form in (password, quote(password, safe="")):
        out = redact_url(f"rtsp://admin:{form}@192.168.1.2:554/ch1")
        assert out == "rtsp://***@192.168.1.2:554/ch1"


def test_redact_text_scrubs_secrets_and_urls() -> None:
    line = (
        f"open failed for rtsp://admin:{TRICKY}@10.0.0.5/s1 (password {TRICKY}, "
        f"encoded {quote(TRICKY, safe='')})"
    )
    out = redact_text(line, [TRICKY])
    assert TRICKY not in out
    assert quote(TRICKY, safe="") not in out
    assert "w%rd" not in out and "p@ss" not in out
    assert "rtsp://***@10.0.0.5/s1" in out


def test_redact_text_leaves_clean_text_alone() -> None:
    text = "camera lobby online at 10 fps"
    assert redact_text(text, ["", "x"]) == text
