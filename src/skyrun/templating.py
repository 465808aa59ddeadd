"""`{{ ... }}` placeholders: finding them, substituting them, and the references all templates share.

Job templates (`skyrun.jobs`) and project files (`skyrun.deploy`) use the same syntax:

* `{{ $NAME }}` -- the environment variable `NAME` of the process that renders;
* `{{ skyrun.variables.NAME }}` -- the skyrun Variable `NAME`;
* `{{ skyrun.blocks.TYPE.NAME }}` or `{{ skyrun.blocks.TYPE.NAME.FIELD[.FIELD...] }}` -- a block
  document, or one of its fields;
* any other name: what the caller defines (a job variable in a job template, an earlier step's
  output `{{ step_id.key }}` in a project file).

A string that is exactly one placeholder is replaced by the value itself, keeping its JSON type;
a placeholder inside other text is replaced by the value's text. Substitution is one pass: text
that comes from a value is never expanded again. A placeholder that cannot be resolved is a
problem naming where it is; nothing is passed through silently.

This module is pure logic: no I/O, no client, no server.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

__all__ = [
    "ENV_PREFIX",
    "PLACEHOLDER_RE",
    "SKYRUN_BLOCKS_PREFIX",
    "SKYRUN_PREFIX",
    "SKYRUN_VARIABLES_PREFIX",
    "BlockLookup",
    "References",
    "Resolution",
    "Resolver",
    "SkyrunVariables",
    "child_path",
    "is_env_placeholder",
    "is_skyrun_placeholder",
    "placeholders",
    "resolve_shared",
    "substitute",
]

ENV_PREFIX = "$"
SKYRUN_PREFIX = "skyrun."
SKYRUN_VARIABLES_PREFIX = "skyrun.variables."
SKYRUN_BLOCKS_PREFIX = "skyrun.blocks."

# `{{ name }}` with optional whitespace. Names are identifiers, optionally prefixed by `$`
# (environment variables) and optionally dotted (`skyrun.variables.NAME`, `step-id.key`).
PLACEHOLDER_RE = re.compile(r"\{\{\s*(\$?[A-Za-z_][A-Za-z0-9_.\-]*)\s*\}\}")

# skyrun Variables: a mapping, or a lookup function raising KeyError (or returning None)
# for a Variable that does not exist.
SkyrunVariables = Mapping[str, Any] | Callable[[str], Any]

# Blocks: (block type slug, block name) -> the block document's data; KeyError when there is
# no such block.
BlockLookup = Callable[[str, str], Mapping[str, Any]]


def is_env_placeholder(name: str) -> bool:
    """Whether `name` refers to an environment variable (`$NAME`)."""
    return name.startswith(ENV_PREFIX)


def is_skyrun_placeholder(name: str) -> bool:
    """Whether `name` is a `skyrun.*` reference (a Variable or a block)."""
    return name.startswith(SKYRUN_PREFIX)


def child_path(path: str, key: str | int) -> str:
    """The display path of a child of `path` (`a.b` or `a[0]`)."""
    if isinstance(key, int):
        return f"{path}[{key}]"
    return f"{path}.{key}"


def _walk_strings(obj: Any, path: str) -> Iterator[tuple[str, str]]:
    if isinstance(obj, str):
        yield path, obj
    elif isinstance(obj, dict):
        for key, value in obj.items():
            yield from _walk_strings(value, child_path(path, str(key)))
    elif isinstance(obj, list):
        for index, value in enumerate(obj):
            yield from _walk_strings(value, child_path(path, index))


def placeholders(obj: Any, root: str) -> list[tuple[str, str]]:
    """Every placeholder in a JSON value, in document order.

    Only string values are scanned; keys are never templated.

    Args:
        obj: Any JSON-like value.
        root: Display name of `obj` itself, the start of each path.

    Returns:
        `(path, name)` pairs such as `("job_configuration.env.TOKEN", "$API_TOKEN")`, one per
        occurrence.
    """
    found: list[tuple[str, str]] = []
    for path, text in _walk_strings(obj, root):
        found.extend((path, match.group(1)) for match in PLACEHOLDER_RE.finditer(text))
    return found


@dataclass(frozen=True)
class Resolution:
    """What a resolver decided for one placeholder occurrence.

    `keep` leaves the placeholder text as it is (to be resolved later, elsewhere), `problem`
    reports an error, otherwise `value` is substituted.
    """

    value: Any = None
    problem: str | None = None
    keep: bool = False


# resolver(name, path, whole) -> Resolution; `whole` is True when the placeholder is the
# entire string value (so the value keeps its JSON type).
Resolver = Callable[[str, str, bool], Resolution]


def _to_text(value: Any) -> str:
    if isinstance(value, dict | list):
        return json.dumps(value)
    return str(value)


def _substitute_string(text: str, path: str, resolve: Resolver, problems: list[str]) -> Any:
    whole = PLACEHOLDER_RE.fullmatch(text.strip())
    if whole is not None:
        outcome = resolve(whole.group(1), path, True)
        if outcome.problem is not None:
            problems.append(outcome.problem)
            return text
        if outcome.keep:
            return text
        return copy.deepcopy(outcome.value)

    def replace(match: re.Match[str]) -> str:
        outcome = resolve(match.group(1), path, False)
        if outcome.problem is not None:
            problems.append(outcome.problem)
            return match.group(0)
        if outcome.keep:
            return match.group(0)
        return _to_text(outcome.value)

    return PLACEHOLDER_RE.sub(replace, text)


def _substitute(obj: Any, path: str, resolve: Resolver, problems: list[str]) -> Any:
    if isinstance(obj, str):
        return _substitute_string(obj, path, resolve, problems)
    if isinstance(obj, dict):
        return {
            key: _substitute(value, child_path(path, str(key)), resolve, problems)
            for key, value in obj.items()
        }
    if isinstance(obj, list):
        return [
            _substitute(value, child_path(path, index), resolve, problems)
            for index, value in enumerate(obj)
        ]
    return copy.deepcopy(obj)


def substitute(obj: Any, resolve: Resolver, root: str) -> tuple[Any, list[str]]:
    """A copy of `obj` with every placeholder resolved by `resolve`.

    Args:
        obj: The JSON value to render; it is not modified.
        resolve: Decides the value of each placeholder occurrence.
        root: Display name of `obj`, the start of every path given to `resolve`.

    Returns:
        The rendered copy and the problems `resolve` reported, in document order. The copy is
        only meaningful when there are none.
    """
    problems: list[str] = []
    rendered = _substitute(obj, root, resolve, problems)
    return rendered, problems


@dataclass(frozen=True)
class References:
    """Where the shared references come from; `None` means "not known here, keep them".

    Attributes:
        env: Environment for `{{ $NAME }}`.
        variables: skyrun Variables for `{{ skyrun.variables.NAME }}`.
        blocks: Block documents for `{{ skyrun.blocks.TYPE.NAME[.FIELD] }}`.
    """

    env: Mapping[str, str] | None = None
    variables: SkyrunVariables | None = None
    blocks: BlockLookup | None = None


def _lookup_variable(source: SkyrunVariables, name: str) -> tuple[bool, Any]:
    if isinstance(source, Mapping):
        value = source.get(name)
    else:
        try:
            value = source(name)
        except KeyError:
            return False, None
    return value is not None, value


def _resolve_block(reference: str, path: str, blocks: BlockLookup) -> Resolution:
    parts = reference.split(".")
    if len(parts) < 2 or not all(parts):
        return Resolution(
            problem=f"{path}: '{{{{ {SKYRUN_BLOCKS_PREFIX}{reference} }}}}' must name a block "
            "as skyrun.blocks.TYPE.NAME or one of its fields as skyrun.blocks.TYPE.NAME.FIELD"
        )
    block_type, block_name, fields = parts[0], parts[1], parts[2:]
    try:
        value: Any = blocks(block_type, block_name)
    except KeyError:
        return Resolution(
            problem=f"{path}: block {block_type}/{block_name} does not exist; create it or fix "
            "the placeholder's name"
        )
    for depth, field in enumerate(fields):
        if not isinstance(value, Mapping) or field not in value:
            where = ".".join(fields[: depth + 1])
            return Resolution(
                problem=f"{path}: block {block_type}/{block_name} has no field {where!r}"
            )
        value = value[field]
    return Resolution(value=value)


def resolve_shared(name: str, path: str, references: References) -> Resolution | None:
    """Resolve `{{ $NAME }}` and `{{ skyrun.* }}`; `None` when `name` is neither.

    A kind whose source is `None` in `references` is kept for later. An unknown `skyrun.*`
    name is a problem.
    """
    if is_env_placeholder(name):
        if references.env is None:
            return Resolution(keep=True)
        env_name = name[len(ENV_PREFIX) :]
        if env_name not in references.env:
            return Resolution(problem=f"{path}: environment variable '{env_name}' is not set")
        return Resolution(value=references.env[env_name])
    if name.startswith(SKYRUN_VARIABLES_PREFIX):
        if references.variables is None:
            return Resolution(keep=True)
        var_name = name[len(SKYRUN_VARIABLES_PREFIX) :]
        found, value = _lookup_variable(references.variables, var_name)
        if not found:
            return Resolution(
                problem=f"{path}: skyrun variable '{var_name}' does not exist; "
                "create it or fix the placeholder's name"
            )
        return Resolution(value=value)
    if name.startswith(SKYRUN_BLOCKS_PREFIX):
        if references.blocks is None:
            return Resolution(keep=True)
        return _resolve_block(name[len(SKYRUN_BLOCKS_PREFIX) :], path, references.blocks)
    if is_skyrun_placeholder(name):
        return Resolution(
            problem=f"{path}: unknown placeholder '{{{{ {name} }}}}'; skyrun placeholders are "
            "skyrun.variables.NAME and skyrun.blocks.TYPE.NAME[.FIELD]"
        )
    return None
