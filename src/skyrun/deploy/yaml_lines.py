"""YAML read with the line of every key, so that a validation error can name its line.

`load_with_lines` parses one YAML document with PyYAML's safe loader (anchors, aliases and
`<<` merge keys work as usual) and returns the data together with a map from each key path,
as pydantic writes an error's location (`("deployments", 0, "work_pool", "name")`), to the
line it is written on. A key that arrives through a merge key maps to the line where the
anchored mapping writes it: that is where a user fixes its value.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

__all__ = ["KeyPath", "LoadedYAML", "YAMLProblem", "load_with_lines", "path_text"]

KeyPath = tuple[str | int, ...]

MERGE_KEY = "<<"


class YAMLProblem(ValueError):
    """The text is not valid YAML, or repeats a key; `line` is 1-based."""

    def __init__(self, line: int, message: str) -> None:
        super().__init__(message)
        self.line = line
        self.message = message


@dataclass
class LoadedYAML:
    """A YAML document's data and the (1-based) line of each key path in it."""

    data: Any
    lines: dict[KeyPath, int] = field(default_factory=dict)

    def line_of(self, path: KeyPath) -> int:
        """The line of `path`, or of its nearest ancestor written in the file (else 1)."""
        for end in range(len(path), 0, -1):
            line = self.lines.get(path[:end])
            if line is not None:
                return line
        return self.lines.get((), 1)


def path_text(path: KeyPath) -> str:
    """`("deployments", 0, "work_pool")` as `deployments[0].work_pool`."""
    text = ""
    for part in path:
        if isinstance(part, int):
            text += f"[{part}]"
        elif part.isidentifier() or part.replace("-", "_").isidentifier():
            text += f".{part}" if text else part
        else:
            text += f"[{part!r}]"
    return text or "(top level)"


def _key(node: Node) -> str | int:
    # Keys in a project file are strings; a scalar's text is what pydantic will report.
    return node.value if isinstance(node, ScalarNode) else str(node.value)


def _check_duplicates(node: Node, path: KeyPath, seen: set[int]) -> None:
    """Refuse a key written twice in one mapping (PyYAML silently keeps the last)."""
    if id(node) in seen:
        return
    seen.add(id(node))
    if isinstance(node, MappingNode):
        first_lines: dict[str | int, int] = {}
        for key_node, value_node in node.value:
            key = _key(key_node)
            if key == MERGE_KEY:
                continue
            line = key_node.start_mark.line + 1
            if key in first_lines:
                raise YAMLProblem(
                    line,
                    f"{path_text((*path, key))}: duplicate key (first written on line "
                    f"{first_lines[key]}); keep one of them",
                )
            first_lines[key] = line
            _check_duplicates(value_node, (*path, key), seen)
    elif isinstance(node, SequenceNode):
        for index, item in enumerate(node.value):
            _check_duplicates(item, (*path, index), seen)


def _record_lines(node: Node, path: KeyPath, lines: dict[KeyPath, int], active: set[int]) -> None:
    # `active` holds the nodes on the current branch: a recursive alias must not loop.
    if id(node) in active:
        return
    active.add(id(node))
    if isinstance(node, MappingNode):
        # After construction the merged pairs come first and the mapping's own pairs after,
        # so a key the mapping overrides ends up with its own line, as its value does.
        for key_node, value_node in node.value:
            child = (*path, _key(key_node))
            lines[child] = key_node.start_mark.line + 1
            _record_lines(value_node, child, lines, active)
    elif isinstance(node, SequenceNode):
        for index, item in enumerate(node.value):
            child = (*path, index)
            lines[child] = item.start_mark.line + 1
            _record_lines(item, child, lines, active)
    active.discard(id(node))


def load_with_lines(text: str) -> LoadedYAML:
    """Parse one YAML document, keeping the line of every key path.

    Raises:
        YAMLProblem: The text is not valid YAML (the line of the problem), holds more than
            one document, or writes a key twice in one mapping.
    """
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return LoadedYAML(data=None)
        _check_duplicates(node, (), set())
        # Constructing flattens merge keys into the mapping nodes, which `_record_lines` reads.
        data = loader.construct_document(node)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else 1
        column = f", column {mark.column + 1}" if mark is not None else ""
        what = " ".join(part for part in (exc.context, exc.problem) if part)
        raise YAMLProblem(line, f"invalid YAML{column}: {what}") from exc
    except yaml.YAMLError as exc:
        raise YAMLProblem(1, f"invalid YAML: {exc}") from exc
    finally:
        loader.dispose()
    lines: dict[KeyPath, int] = {(): node.start_mark.line + 1}
    _record_lines(node, (), lines, set())
    return LoadedYAML(data=data, lines=lines)
