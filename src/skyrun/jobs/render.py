"""Placeholder substitution and job-variable resolution for base job templates.

Finds ``{{ name }}`` placeholders in arbitrary JSON, merges job variables, validates them
against the template's ``variables`` schema and substitutes them.  Template validation and
the public entry points live in :mod:`skyrun.jobs.templates`; import from there.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from jsonschema import Draft202012Validator

from skyrun.validation import schema_path, schema_problems

__all__ = [
    "ENV_PREFIX",
    "SKYRUN_PREFIX",
    "SKYRUN_VARIABLES_PREFIX",
    "JobTemplateError",
    "Resolution",
    "SkyrunVariables",
    "defaults_from_schema",
    "is_env_placeholder",
    "is_skyrun_placeholder",
    "merge_job_variables",
    "properties_of",
    "render_validated",
    "required_of",
    "schema_path",
    "substitute",
    "template_placeholders",
]

ENV_PREFIX = "$"
SKYRUN_PREFIX = "skyrun."
SKYRUN_VARIABLES_PREFIX = "skyrun.variables."
SET_IT_HINT = (
    "set it in the work pool's defaults, the deployment's job_variables or the run's job_variables"
)

# skyrun Variables: a mapping, or a lookup function raising KeyError / returning None
# for a Variable that does not exist.
SkyrunVariables = Mapping[str, Any] | Callable[[str], Any]

# `{{ name }}` with optional whitespace.  Names are identifiers, optionally prefixed by `$`
# (environment variables) and optionally dotted (`skyrun.variables.NAME`).
PLACEHOLDER_RE = re.compile(r"\{\{\s*(\$?[A-Za-z_][A-Za-z0-9_.\-]*)\s*\}\}")


class JobTemplateError(ValueError):
    """A base job template, or the job variables given to it, cannot be used.

    Attributes:
        problems: Every individual problem found; the message lists all of them.
    """

    def __init__(self, message: str, problems: list[str] | None = None) -> None:
        super().__init__(message)
        self.problems: list[str] = list(problems) if problems else [message]

    @classmethod
    def from_problems(cls, header: str, problems: list[str]) -> JobTemplateError:
        """Build one error out of several problems.

        Args:
            header: Sentence introducing the list when there is more than one problem.
            problems: Individual problem messages (at least one).

        Returns:
            An error whose message is the sole problem, or the header followed by a
            bulleted list of problems.
        """
        if len(problems) == 1:
            return cls(problems[0], problems)
        bullets = "\n".join(f"  - {p}" for p in problems)
        return cls(f"{header} ({len(problems)} problems):\n{bullets}", problems)


def is_env_placeholder(name: str) -> bool:
    """Return whether ``name`` refers to an environment variable (``$NAME``)."""
    return name.startswith(ENV_PREFIX)


def is_skyrun_placeholder(name: str) -> bool:
    """Return whether ``name`` is a ``skyrun.*`` placeholder (needs no declaration)."""
    return name.startswith(SKYRUN_PREFIX)


def child_path(path: str, key: str | int) -> str:
    """Return the display path of a child of ``path`` (``a.b`` or ``a[0]``)."""
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


def template_placeholders(obj: Any, root: str = "job_configuration") -> list[tuple[str, str]]:
    """List every placeholder in a JSON value, in document order.

    Only string values are scanned; dictionary keys are never templated.

    Args:
        obj: Any JSON-like value (dicts, lists, strings, numbers, ...).
        root: Display name of ``obj`` itself, used as the start of each path.

    Returns:
        ``(path, name)`` pairs such as ``("job_configuration.env.TOKEN", "$API_TOKEN")``.
        A placeholder that occurs several times is listed once per occurrence.
    """
    found: list[tuple[str, str]] = []
    for path, text in _walk_strings(obj, root):
        found.extend((path, match.group(1)) for match in PLACEHOLDER_RE.finditer(text))
    return found


@dataclass(frozen=True)
class Resolution:
    """What a resolver decided for one placeholder occurrence.

    Exactly one of the three outcomes applies: ``keep`` leaves the placeholder text
    untouched, ``problem`` reports an error, otherwise ``value`` is substituted.
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

    # A single pass: text coming from values is never expanded again.
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


def substitute(
    obj: Any, resolve: Resolver, root: str = "job_configuration"
) -> tuple[Any, list[str]]:
    """Return a copy of ``obj`` with every placeholder resolved.

    A string that is exactly one placeholder (ignoring surrounding whitespace) is replaced
    by the resolved value itself, keeping its JSON type.  Placeholders embedded in other
    text are replaced by ``str(value)``, or by ``json.dumps(value)`` for dicts and lists.

    Args:
        obj: The JSON value to render; it is not modified.
        resolve: Callback deciding the value of each placeholder occurrence.
        root: Display name of ``obj``, the start of every path given to ``resolve``.

    Returns:
        The rendered copy and the list of problems reported by ``resolve`` (in document
        order).  The copy is only meaningful when the list is empty.
    """
    problems: list[str] = []
    rendered = _substitute(obj, root, resolve, problems)
    return rendered, problems


def properties_of(variables: Mapping[str, Any]) -> dict[str, Any]:
    """Return ``variables.properties``, or ``{}`` if absent."""
    properties = variables.get("properties")
    return properties if isinstance(properties, dict) else {}


def required_of(variables: Mapping[str, Any]) -> list[str]:
    """Return ``variables.required``, or ``[]`` if absent."""
    required = variables.get("required")
    return [str(r) for r in required] if isinstance(required, list) else []


def defaults_from_schema(variables_schema: Mapping[str, Any]) -> dict[str, Any]:
    """Collect the default value of every declared job variable.

    Args:
        variables_schema: The ``variables`` JSON Schema of a base job template.

    Returns:
        ``{name: default}`` (deep copies) for each property that has a ``default``.
    """
    return {
        name: copy.deepcopy(schema["default"])
        for name, schema in properties_of(variables_schema).items()
        if isinstance(schema, dict) and "default" in schema
    }


def merge_job_variables(
    pool_defaults: Mapping[str, Any],
    deployment: Mapping[str, Any] | None,
    run: Mapping[str, Any] | None,
) -> dict[str, Any]:
    """Merge job variables by precedence: pool defaults < deployment < run.

    Each key of a later layer replaces the earlier value, except ``env``: when both the
    earlier and the later value are dicts they are merged key by key (the later layer
    wins per key).  A ``None`` value replaces like any other value; rendering treats it
    as "no value".

    Args:
        pool_defaults: Defaults from the work pool (see :func:`defaults_from_schema`).
        deployment: The deployment's ``job_variables``, if any.
        run: The flow run's ``job_variables``, if any.

    Returns:
        A new dict; the inputs are not modified.
    """
    merged: dict[str, Any] = copy.deepcopy(dict(pool_defaults))
    for layer in (deployment, run):
        for key, value in (layer or {}).items():
            current = merged.get(key)
            if key == "env" and isinstance(current, dict) and isinstance(value, dict):
                merged[key] = {**current, **copy.deepcopy(value)}
            else:
                merged[key] = copy.deepcopy(value)
    return merged


def _validate_values(variables: dict[str, Any], values: dict[str, Any], used: set[str]) -> None:
    """Validate declared job variables; undeclared keys are ignored."""
    properties = properties_of(variables)
    declared = {k: v for k, v in values.items() if k in properties}
    problems: list[str] = []
    for name in required_of(variables):
        # Missing variables used in job_configuration are reported with their path later.
        if name not in declared and name not in used:
            problems.append(f"job variable '{name}' is required but has no value; {SET_IT_HINT}")
    # Missing required variables and unknown keys are worded above (or ignored).
    problems.extend(
        schema_problems(
            Draft202012Validator(variables),
            declared,
            "job variable",
            skip_at_root=("required", "additionalProperties"),
        )
    )
    if problems:
        raise JobTemplateError.from_problems("invalid job variables", problems)


def _lookup_skyrun_variable(source: SkyrunVariables, name: str) -> tuple[bool, Any]:
    if isinstance(source, Mapping):
        value = source.get(name)
    else:
        try:
            value = source(name)
        except KeyError:
            return False, None
    return value is not None, value


def render_validated(
    template: dict[str, Any],
    values: Mapping[str, Any],
    env: Mapping[str, str],
    skyrun_variables: SkyrunVariables,
) -> dict[str, Any]:
    """Render an already validated template; see ``job_template.render_job_configuration``.

    Args:
        template: A base job template that passed ``validate_base_job_template``.
        values: Job variables; schema defaults fill in missing ones.
        env: Environment used for ``{{ $NAME }}`` placeholders.
        skyrun_variables: skyrun Variables, as a mapping or a lookup function.

    Returns:
        The rendered copy of ``job_configuration``.

    Raises:
        JobTemplateError: If job variables are invalid or placeholders cannot be resolved.
    """
    variables: dict[str, Any] = template["variables"]
    properties = properties_of(variables)
    required = set(required_of(variables))
    effective = merge_job_variables(defaults_from_schema(variables), values, None)
    effective = {k: v for k, v in effective.items() if v is not None}
    used = {name for _, name in template_placeholders(template["job_configuration"])}
    _validate_values(variables, effective, used)

    def resolve(name: str, path: str, whole: bool) -> Resolution:
        if is_env_placeholder(name):
            env_name = name[1:]
            if env_name not in env:
                return Resolution(
                    problem=f"{path}: environment variable '{env_name}' is not set; export "
                    "it in the environment that renders the job (the worker's)"
                )
            return Resolution(value=env[env_name])
        if name.startswith(SKYRUN_VARIABLES_PREFIX):
            var_name = name[len(SKYRUN_VARIABLES_PREFIX) :]
            found, value = _lookup_skyrun_variable(skyrun_variables, var_name)
            if not found:
                return Resolution(
                    problem=f"{path}: skyrun variable '{var_name}' does not exist; "
                    "create it or fix the placeholder's name"
                )
            return Resolution(value=value)
        if is_skyrun_placeholder(name):
            return Resolution(keep=True)
        if name in effective:
            return Resolution(value=effective[name])
        if whole and name in properties and name not in required:
            return Resolution(value=None)
        return Resolution(problem=f"{path}: variable '{name}' has no value; {SET_IT_HINT}")

    rendered, problems = substitute(template["job_configuration"], resolve)
    if problems:
        raise JobTemplateError.from_problems("cannot render job_configuration", problems)
    return rendered
