"""The ``web:`` section: each key's effect (the process, the bind address, auth rules, CORS,
the body limit) with a real server where the effect is on the wire."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from web_support import TOKEN, WebServer, load, web_config

from vadmon.config import load_config_text
from vadmon.errors import VadmonError
from vadmon.monitor import child_specs

BASE = """
cameras: {door: {source: "synthetic:"}}
model: {mode: vadclip, checkpoint: x.pt}
"""


def cfg(web: str, env: dict[str, str] | None = None):
    return load_config_text(BASE + web, "t.yaml", env or {"T": TOKEN})


def test_web_process_runs_only_when_enabled_and_on_the_inference_host() -> None:
    off = cfg("")
    on = cfg("web: {enabled: true, auth: {token: '${T}'}}")
    names = lambda c, role: [s.name for s in child_specs(c, Path("c.yaml"), role)]  # noqa: E731
    assert "web" not in names(off, "all")
    assert names(on, "all")[-1] == "web"
    assert "web" in names(on, "inference") and "web" not in names(on, "capture")
    (spec,) = [s for s in child_specs(on, Path("c.yaml")) if s.name == "web"]
    assert spec.argv[1:4] == ["-m", "vadmon.web", "--config"] and not spec.essential
    assert TOKEN not in " ".join(spec.argv)  # the token never on a command line


def test_auth_rules_are_config_errors() -> None:
    with pytest.raises(VadmonError, match="loopback"):
        cfg("web: {enabled: true, listen: '0.0.0.0:8971', auth: {enabled: false}}")
    with pytest.raises(VadmonError, match="token is required"):
        cfg("web: {enabled: true}")
    with pytest.raises(VadmonError, match="at least 16"):
        cfg("web: {enabled: true, auth: {token: '${T}'}}", {"T": "short"})
    with pytest.raises(VadmonError, match="public_url"):
        cfg("web: {public_url: 'ftp://x'}")
    with pytest.raises(VadmonError, match="credentials"):
        cfg("web: {public_url: 'https://u:p@x.test'}")
    with pytest.raises(VadmonError, match="cors"):
        cfg("web: {cors_origins: ['*']}")
    loop = cfg("web: {enabled: true, listen: '[::1]:9000', auth: {enabled: false}}")
    assert loop.web.base_url() == "http://[::1]:9000"
    assert (
        cfg("web: {public_url: 'https://cams.example/'}").web.base_url() == "https://cams.example"
    )
    assert TOKEN in cfg("web: {enabled: true, auth: {token: '${T}'}}").secret_values()


def test_auth_off_on_loopback_cors_and_body_limit(tmp_path: Path) -> None:
    web = "  cors_origins: ['http://review.test']\n  max_request_bytes: 1024\n"
    config = web_config(tmp_path, auth=False, web=web)
    with WebServer(config) as server, httpx.Client(base_url=server.base, trust_env=False) as c:
        assert c.get("/api/events").status_code == 200  # no token needed
        assert c.get("/api/session").json() == {"auth": False, "authenticated": True}
        rebound = c.get("/api/events", headers={"host": "evil.test"})
        assert rebound.status_code == 421  # DNS rebinding: Host must name this server
        pre = {"origin": "http://review.test", "access-control-request-method": "POST",
               "access-control-request-headers": "x-vadmon-request"}  # fmt: skip
        ok = c.options("/api/events/x/feedback", headers=pre)
        assert ok.headers.get("access-control-allow-origin") == "http://review.test"
        other = c.options("/api/events/x/feedback", headers={**pre, "origin": "http://evil.test"})
        assert "access-control-allow-origin" not in other.headers
        body = {"verdict": "confirmed", "note": "x" * 1000}  # 1 kB: over this server's limit
        csrf = {"x-vadmon-request": "1"}
        assert c.post("/api/events/1700000000.000000-aaaaaa/feedback", json=body,
                      headers=csrf).status_code == 413  # fmt: skip
        small = {"verdict": "confirmed", "note": "x" * 10}
        assert c.post("/api/events/1700000000.000000-aaaaaa/feedback", json=small,
                      headers=csrf).status_code == 404  # fmt: skip
        streamed = c.post("/api/session", content=iter([b"{" + b" " * 2000 + b"}"]), headers=csrf)
        assert streamed.status_code == 413  # chunked, no Content-Length: counted as it comes
    assert load(config).web.auth.enabled is False
