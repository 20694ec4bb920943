"""The package's shape, read from its source with ``ast`` (nothing of vadmon is imported).

Why: a layout only stays readable while nothing enforces the opposite. These checks keep the
rules of docs/ARCHITECTURE.md true as people add code: no import cycles (a cycle means two
modules can only be understood together, and breaks as soon as one import moves to the top),
the model package stands alone (research and streaming both build on it, it builds on neither),
few loose modules at the top of ``vadmon/`` and no module too long to read in one sitting.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "vadmon"
MAX_LINES = 400
MAX_LOOSE = 15
MODEL_MAY_IMPORT = {"vadmon", "vadmon.errors", "vadmon.atomic"}


def module_files(root: Path) -> dict[str, Path]:
    """Dotted module name → file, for every ``.py`` under ``root`` (a package directory)."""
    found = {}
    for path in sorted(root.rglob("*.py")):
        parts = path.relative_to(root.parent).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        found[".".join(parts)] = path
    return found


def _absolute(module: str, is_package: bool, node: ast.ImportFrom) -> str:
    """The absolute name ``from .x import y`` refers to inside ``module``."""
    if not node.level:
        return node.module or ""
    base = module.split(".") if is_package else module.split(".")[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def _known(name: str, modules: dict[str, Path]) -> str | None:
    """The longest prefix of ``name`` that is one of our modules (``pkg.mod.func`` → ``pkg.mod``)."""
    while name and name not in modules:
        name = name.rpartition(".")[0]
    return name or None


def imports_of(module: str, modules: dict[str, Path]) -> set[str]:
    """Every module of ours that ``module`` imports anywhere (top level, in functions, or under
    ``TYPE_CHECKING``: all of them say which way the design depends), plus the packages Python
    runs on the way (importing ``a.b.c`` runs ``a/b/__init__.py``)."""
    path = modules[module]
    targets: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = _absolute(module, path.name == "__init__.py", node)
            names = [base] + [f"{base}.{alias.name}" for alias in node.names]
        else:
            continue
        for name in names:
            hit = _known(name, modules)
            while hit:
                targets.add(hit)
                hit = _known(hit.rpartition(".")[0], modules)
    own_packages = {".".join(module.split(".")[:i]) for i in range(1, module.count(".") + 1)}
    return targets - own_packages - {module}


def import_graph(root: Path) -> dict[str, set[str]]:
    modules = module_files(root)
    return {name: imports_of(name, modules) for name in modules}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for start in sorted(graph):
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def test_no_import_cycles_inside_vadmon() -> None:
    found = cycles(import_graph(PACKAGE))
    assert not found, "import cycles: " + "; ".join(" <-> ".join(c) for c in found)


def test_model_imports_only_itself_and_leaf_utilities() -> None:
    graph = import_graph(PACKAGE)
    model = {
        name: deps for name, deps in graph.items() if name.split(".")[:2] == ["vadmon", "model"]
    }
    assert "vadmon.model.vadclip" in model and "vadmon.model.stream" in model
    outside = {
        name: sorted(d for d in deps if d.split(".")[:2] != ["vadmon", "model"])
        for name, deps in model.items()
    }
    bad = {name: [d for d in deps if d not in MODEL_MAY_IMPORT] for name, deps in outside.items()}
    assert not any(bad.values()), f"vadmon.model reaches outside itself: {bad}"


def test_process_code_never_imports_the_composition_root() -> None:
    """Only a process's entry module (``__main__``) may turn the config into settings: the loops
    take settings dataclasses, so they run the same under ``vadmon run`` and in a test."""
    graph = import_graph(PACKAGE)
    roots = {"vadmon.monitor", "vadmon.settings", "vadmon.settings_channels"}
    processes = ("vadmon.capture", "vadmon.inference", "vadmon.alerts")
    entries = {f"{p}.__main__" for p in processes}
    assert entries <= graph.keys()
    offenders = {
        name: sorted(deps & roots)
        for name, deps in graph.items()
        if name.startswith(processes) and name not in entries and deps & roots
    }
    assert not offenders, f"process code imports the composition root: {offenders}"
    assert all(graph[e] & roots for e in entries), "each entry asks vadmon.settings"


def test_few_loose_modules_at_the_top() -> None:
    loose = sorted(p.name for p in PACKAGE.glob("*.py") if p.name != "__init__.py")
    assert len(loose) <= MAX_LOOSE, f"{len(loose)} modules at the top of vadmon/: {loose}"


def test_no_module_too_long_to_read() -> None:
    long = {
        str(path.relative_to(PACKAGE.parent)): n
        for path in PACKAGE.rglob("*.py")
        if (n := len(path.read_text().splitlines())) > MAX_LINES
    }
    assert not long, f"modules over {MAX_LINES} lines (split them by responsibility): {long}"


def test_checker_sees_cycles_relative_imports_and_package_inits(tmp_path: Path) -> None:
    """The checks above can fail: a small package with each kind of violation is caught."""
    pkg = tmp_path / "pkg"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "sub" / "__init__.py").write_text("from pkg import top\n")
    (pkg / "sub" / "leaf.py").write_text("def f():\n    from . import other\n")
    (pkg / "sub" / "other.py").write_text("")
    (pkg / "top.py").write_text("import pkg.sub.other\n")
    (pkg / "alone.py").write_text("from typing import TYPE_CHECKING\nimport os\n")
    graph = import_graph(pkg)
    assert graph["pkg.sub.leaf"] == {"pkg.sub.other"}
    assert graph["pkg.top"] == {"pkg.sub", "pkg.sub.other"}
    assert graph["pkg.alone"] == set()
    # top imports pkg.sub.other, which runs pkg/sub/__init__.py, which imports top
    assert cycles(graph) == [["pkg.sub", "pkg.top"]]


def architecture_tree(doc: Path) -> dict[str, set[str]]:
    """The words of each entry of the ``vadmon/`` tree in ``docs/ARCHITECTURE.md``: ``""`` for
    the loose modules, ``"capture"`` for ``capture/`` and so on."""
    text = doc.read_text()
    start = text.index("```\nvadmon/\n") + len("```\nvadmon/\n")
    block = text[start : text.index("```", start)]
    words: dict[str, set[str]] = {"": set()}
    section = ""
    for line in block.splitlines():
        entry = re.match(r"^  (\w+)/\s", line)
        if entry:
            section = entry.group(1)
            words.setdefault(section, set())
        words[section].update(re.findall(r"[A-Za-z_]\w*", line))
    return words


def test_the_architecture_tree_names_every_module() -> None:
    """docs/ARCHITECTURE.md's tree is where a reader looks a module up: every module is named
    under its package (a new module without a line there fails here)."""
    tree = architecture_tree(PACKAGE.parent / "docs" / "ARCHITECTURE.md")
    missing = []
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE).with_suffix("").parts
        if parts[-1] == "__init__":
            continue
        section, name = ("", parts[0]) if len(parts) == 1 else (parts[0], parts[-1])
        if name not in tree.get(section, set()):
            missing.append("/".join(parts))
    assert not missing, f"docs/ARCHITECTURE.md's tree does not name: {missing}"


def test_no_test_module_imports_another() -> None:
    """Shared test helpers live in ``tests/*_support.py``: a test module importing another runs
    the other's module-level code and couples two files a reader expects to be independent."""
    tests = PACKAGE.parent / "tests"
    offenders = []
    for path in sorted(tests.glob("test_*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            else:
                continue
            for name in names:
                if name.removeprefix("tests.").startswith("test_"):
                    offenders.append(f"{path.name} imports {name}")
    assert not offenders, offenders
