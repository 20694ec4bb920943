"""The newcomer's pages: README keeps its two opening commands and stays short, every relative
link in README, docs/ and models/README.md points at a file that exists, and the weights page
names the cache folder vadmon really looks in."""

from __future__ import annotations

import re
from pathlib import Path

from vadmon.startup import weights

REPO = Path(__file__).resolve().parent.parent
LINK = re.compile(r"\]\(([^)#\s]+)(?:#[^)]*)?\)")


def test_readme_opens_with_the_two_commands_and_stays_short():
    text = (REPO / "README.md").read_text()
    block = text.split("```bash\n", 1)[1].split("```", 1)[0].splitlines()
    assert block[0].startswith("pip install -e . && python run_monitor.py --demo")
    assert block[1].startswith("bash .ci/run") and "python -m pytest -q" in block[1]
    assert "pip install torch --index-url https://download.pytorch.org/whl/cpu" in text
    assert len(text) < 8000, len(text)  # the rest lives in docs/


def test_every_relative_link_resolves():
    pages = [
        REPO / "README.md",
        REPO / "models" / "README.md",
        *sorted((REPO / "docs").glob("*.md")),
    ]
    broken = []
    for page in pages:
        for target in LINK.findall(page.read_text()):
            if "://" in target or target.startswith("mailto:"):
                continue
            if not (page.parent / target).exists():
                broken.append(f"{page.relative_to(REPO)} → {target}")
    assert not broken, broken


def test_weights_page_names_the_cache_vadmon_reads():
    text = (REPO / "models" / "README.md").read_text()
    repo = weights.KNOWN_HUB[("ViT-B-16", "openai")].rstrip("/")
    assert repo in text and f"models--{repo.replace('/', '--')}" in text
    for name in weights.HUB_FILES:
        assert name in text
    for published in weights.PUBLISHED.values():
        assert published in text
