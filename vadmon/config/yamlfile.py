"""YAML to plain data, remembering the line every value came from.

pydantic reports errors by path (``cameras.lobby.fps``); users fix files by line. We compose
the YAML node graph ourselves (``yaml.compose`` keeps start marks) and record, for every
path, the line of its key (or of the list item). ``${ENV}`` placeholders are substituted in
string scalars on the way, so a missing variable is reported at its own line too.

Aliases make the node graph a DAG whose expansion can be exponential in the file size (a
"billion laughs" file of a few hundred bytes expands to 10^9 values). Before anything expands
(merge keys included) we size the expansion with one linear pass over the composed graph and
refuse a file that would expand past :data:`MAX_NODES` values, or that refers to itself.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import yaml

from vadmon.config.env import UnknownVariable, substitute
from vadmon.errors import VadmonError

Path = tuple[str | int, ...]

MAX_NODES = 2_000_000
"""Most YAML values a config may expand to (aliases and merge keys counted at every use):
far above any real file (1,000 cameras with every key set is ~60,000), far below a bomb."""


@dataclass
class Located:
    """Plain YAML data plus ``path -> (line, shown_path)``; shown_path differs after merges."""

    data: Any
    lines: dict[Path, tuple[int, str]] = field(default_factory=dict)
    secrets: list[str] = field(default_factory=list)

    def line_of(self, path: Path) -> tuple[int, str]:
        """Line of the deepest recorded prefix of ``path`` and the path to show with it."""
        for end in range(len(path), -1, -1):
            if path[:end] in self.lines:
                line, shown = self.lines[path[:end]]
                tail = format_path(path[end:], leading_dot=bool(shown))
                return line, shown + tail
        return 1, format_path(path)


def format_path(path: Path, leading_dot: bool = False) -> str:
    """``("cameras", "lobby", "fps")`` -> ``cameras.lobby.fps``; indices as ``[0]``."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if (out or leading_dot) else str(part)
    return out


def load_yaml(text: str, where: str, env: Mapping[str, str]) -> Located:
    """Parse ``text`` (named ``where`` in messages) into :class:`Located` data."""
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else 1
        raise VadmonError(
            f"invalid YAML ({exc.problem or exc.context})",
            f"{where}:{line}",
            "fix the YAML syntax (indentation, quotes, colons)",
        ) from None
    except yaml.YAMLError as exc:
        raise VadmonError(f"invalid YAML ({exc})", where, "fix the YAML syntax") from None
    finally:
        loader.dispose()
    if node is None:
        raise VadmonError("config file is empty", where, "add at least a 'cameras:' section")
    _check_expansion(node, where)
    located = Located(data=None)
    walker = _Walker(loader, where, env, located)
    located.lines[()] = (node.start_mark.line + 1, "")
    located.data = walker.value(node, ())
    return located


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.MappingNode):
        return [part for pair in node.value for part in pair]
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    return []


def _check_expansion(root: yaml.Node, where: str) -> None:
    """Refuse a graph that expands past MAX_NODES or loops; linear in the composed graph."""
    size: dict[int, int] = {}
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    open_ids: set[int] = set()
    while stack:
        node, done = stack.pop()
        key = id(node)
        if done:
            open_ids.discard(key)
            total = 1 + sum(size[id(c)] for c in _children(node))
            size[key] = min(total, MAX_NODES + 1)
            continue
        if key in size:
            continue
        if key in open_ids:
            raise VadmonError(
                "YAML alias refers to itself",
                f"{where}:{node.start_mark.line + 1}",
                "remove the recursive alias (*name inside its own &name)",
            )
        open_ids.add(key)
        stack.append((node, True))
        stack.extend((c, False) for c in _children(node) if id(c) not in size)
    if size[id(root)] <= MAX_NODES:
        return
    node = root
    while True:  # descend to the smallest node that alone is too big: that is the line to fix
        big = [c for c in _children(node) if size[id(c)] > MAX_NODES]
        if not big:
            break
        node = big[0]
    raise VadmonError(
        f"YAML expands to more than {MAX_NODES:,} values through aliases",
        f"{where}:{node.start_mark.line + 1}",
        "write the values out or reuse fewer aliases (*name); a config never needs this many",
    )


class _Walker:
    def __init__(
        self, loader: yaml.SafeLoader, where: str, env: Mapping[str, str], out: Located
    ) -> None:
        self.loader = loader
        self.where = where
        self.env = env
        self.out = out

    def value(self, node: yaml.Node, path: Path) -> Any:
        if isinstance(node, yaml.MappingNode):
            return self.mapping(node, path)
        if isinstance(node, yaml.SequenceNode):
            return self.sequence(node, path)
        return self.scalar(node, path)

    def mapping(self, node: yaml.MappingNode, path: Path) -> dict[str, Any]:
        self.loader.flatten_mapping(node)  # resolves YAML merge keys (<<: *anchor)
        result: dict[str, Any] = {}
        for key_node, value_node in node.value:
            key = self.loader.construct_object(key_node, deep=True)
            line = key_node.start_mark.line + 1
            if not isinstance(key, str):
                key = str(key)
            child = (*path, key)
            if key in result:
                raise VadmonError(
                    f"duplicate key '{key}'",
                    f"{self.where}:{line} ({format_path(child)})",
                    "each key may appear only once in a mapping",
                )
            self.out.lines[child] = (line, format_path(child))
            result[key] = self.value(value_node, child)
        return result

    def sequence(self, node: yaml.SequenceNode, path: Path) -> list[Any]:
        items = []
        for index, item in enumerate(node.value):
            child = (*path, index)
            self.out.lines[child] = (item.start_mark.line + 1, format_path(child))
            items.append(self.value(item, child))
        return items

    def scalar(self, node: yaml.Node, path: Path) -> Any:
        value = self.loader.construct_object(node, deep=True)
        if not isinstance(value, str):
            return value
        try:
            return substitute(value, self.env, self.out.secrets)
        except UnknownVariable as exc:
            line = node.start_mark.line + 1
            where = f"{self.where}:{line} ({format_path(path)})"
            if exc.malformed:
                raise VadmonError(
                    f"malformed placeholder '${{{exc.name}}}'",
                    where,
                    "use ${NAME} with letters, digits and underscores, or $${...} for a literal",
                ) from None
            raise VadmonError(
                f"environment variable '{exc.name}' is not set",
                where,
                f"export {exc.name}=... before starting vadmon, or remove the placeholder",
            ) from None
