"""Values checked against JSON Schemas, and the one way jsonschema's errors become messages.

Deployment parameters (checked by the SDK when deploying and by the server when
a deployment is saved or run), job variables (the SDK, the CLI, the server and
the worker's rendering) and base job templates (their schema and defaults) all
report problems through `schema_problems`, so a message reads the same wherever
it is raised: ``parameter 'n': 'many' is not of type 'integer'``, or for a
nested value ``job variable 'env': 1 is not of type 'string' (at env.A)``.

(This module imports jsonschema, ~3 MiB: the server imports it only when it
checks a deployment or a work pool, never in a process that only runs flows.)
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError

__all__ = [
    "job_variable_problems",
    "parameter_problems",
    "schema_path",
    "schema_problems",
]


def schema_path(parts: Iterable[Any]) -> str:
    """JSON Schema path parts as ``.key`` / ``[index]`` segments (``.env.A``, ``[0]``)."""
    return "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in parts)


def _where(path: list[Any]) -> str:
    return f"{path[0]}{schema_path(path[1:])}"


def _describe(error: ValidationError, noun: str | None) -> str:
    path = list(error.absolute_path)
    if noun is None or not path:
        return error.message
    nested = f" (at {_where(path)})" if len(path) > 1 else ""
    return f"{noun} '{path[0]}': {error.message}{nested}"


def schema_problems(
    validator: Draft202012Validator,
    instance: Any,
    noun: str | None = None,
    *,
    skip_at_root: Collection[str] = (),
) -> list[str]:
    """One message per way `instance` fails the validator's schema, in path order.

    Args:
        validator: The schema's validator (``root.evolve(schema=...)`` for a part of
            a schema whose ``$ref``s point into the root).
        instance: The value checked.
        noun: What the instance's top-level keys are ("parameter", "job variable"):
            an error inside key ``k`` reads ``<noun> 'k': <message>``, with
            ``(at k.a[0])`` when it is deeper. None: the bare messages.
        skip_at_root: Keywords whose errors about the instance itself are left to
            the caller, which words them better (e.g. "required").

    Returns:
        The messages; empty when the instance is valid.
    """
    errors = [
        error
        for error in validator.iter_errors(instance)
        if error.absolute_path or error.validator not in skip_at_root
    ]
    errors.sort(key=lambda e: ([str(p) for p in e.absolute_path], e.message))
    return [_describe(error, noun) for error in errors]


def parameter_problems(
    schema: Mapping[str, Any],
    parameters: Mapping[str, Any],
    *,
    need_all: bool,
    who_needs: str = "a run needs",
) -> list[str]:
    """What is wrong with a deployment's or a run's parameters for the flow's schema.

    Args:
        schema: The flow's parameter schema (``parameter_openapi_schema``); empty
            means "not known", and nothing is checked.
        parameters: JSON values by parameter name.
        need_all: Whether every required parameter must have a value (a run, or a
            deployment with a schedule); otherwise only the given ones are checked.
        who_needs: Who needs the missing values, for the message ("scheduled runs
            need" a value for 'n').

    Returns:
        One message per invalid, unknown or missing parameter.
    """
    if not schema:
        return []
    partial = {key: value for key, value in schema.items() if key != "required"}
    problems = schema_problems(Draft202012Validator(partial), dict(parameters), "parameter")
    required = schema.get("required")
    missing = [
        str(name)
        for name in (required if isinstance(required, list) else [])
        if name not in parameters
    ]
    if need_all and missing:
        names = ", ".join(repr(name) for name in missing)
        problems.append(f"{who_needs} a value for {names} (no default)")
    return problems


def job_variable_problems(
    template: Mapping[str, Any], job_variables: Mapping[str, Any]
) -> list[str]:
    """What is wrong with `job_variables` for a work pool's base job template.

    Each must be declared in the template's ``variables.properties`` (another
    would be silently ignored) and valid against its own schema; None means
    "the pool's default" and is always allowed. Required variables are not
    asked for here: the pool's defaults or the run may still give them.

    Returns:
        One message per unknown or invalid job variable.
    """
    variables = template.get("variables")
    variables = variables if isinstance(variables, dict) else {}
    properties = variables.get("properties")
    properties = properties if isinstance(properties, dict) else {}
    root = Draft202012Validator(variables)
    problems = []
    for name, value in job_variables.items():
        if name not in properties:
            declared = ", ".join(repr(p) for p in properties) or "(none)"
            problems.append(f"unknown job variable {name!r} (the pool declares: {declared})")
            continue
        if value is None or not isinstance(properties[name], dict):
            continue
        # Checked as {name: value} against the one property, so errors read like
        # the rest ("job variable 'cpu': ..."); evolve() keeps the root's $refs.
        part = root.evolve(schema={"properties": {name: properties[name]}})
        problems.extend(schema_problems(part, {name: value}, "job variable"))
    return problems
