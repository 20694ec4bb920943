"""Helpers shared by tests (moved from test_model_loading.py; test modules import only *_support modules)."""

from __future__ import annotations

SLOW_LOAD_S = 12.0


SITECUSTOMIZE = f"""
import os, time
if os.environ.get("VADMON_PROCESS_NAME") == "inference":
    import vadmon.inference.build as build
    real = build.build_scorer
    def slow(*args, **kwargs):
        result = real(*args, **kwargs)
        time.sleep({SLOW_LOAD_S})
        return result
    build.build_scorer = slow
"""


def slow_load_env(tmp_path, env: dict[str, str]) -> dict[str, str]:
    """``env`` with the slow-load ``sitecustomize`` first on the children's path."""
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(SITECUSTOMIZE)
    return dict(env, PYTHONPATH=f"{site}:{env['PYTHONPATH']}")
