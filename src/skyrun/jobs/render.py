"""Job-variable resolution and rendering for base job templates.

Merges job variables, validates them against the template's ``variables`` schema and
substitutes them with the placeholder engine of :mod:`skyrun.templating`.  Template
validation and the public entry points live in :mod:`skyrun.jobs.templates`; import from there.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from jsonschema import Draft202012Validator

from skyrun.blocks.references import BlockReferenceError, resolve_block_references
from skyrun.templating import (
    BlockLookup,
    References,
    Resolution,
    SkyrunVariables,
    is_env_placeholder,
    is_skyrun_placeholder,
    placeholders,
    resolve_shared,
    substitute,
)
from skyrun.validation import schema_path, schema_problems

__all__ = [
    "JobTemplateError",
    "SkyrunVariables",
    "defaults_from_schema",
    "is_env_placeholder",
    "is_skyrun_placeholder",
    "merge_job_variables",
    "properties_of",
    "render_validated",
    "required_of",
    "schema_path",
    "template_placeholders",
]

SET_IT_HINT = (
    "set it in the work pool's defaults, the deployment's job_variables or the run's job_variables"
)
ENV_HINT = "; export it in the environment that renders the job (the worker's)"


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


def template_placeholders(obj: Any, root: str = "job_configuration") -> list[tuple[str, str]]:
    """Every placeholder in a job configuration, as ``(path, name)`` in document order."""
    return placeholders(obj, root)


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


def render_validated(
    template: dict[str, Any],
    values: Mapping[str, Any],
    env: Mapping[str, str],
    skyrun_variables: SkyrunVariables,
    blocks: BlockLookup | None = None,
) -> dict[str, Any]:
    """Render an already validated template; see ``job_template.render_job_configuration``.

    Args:
        template: A base job template that passed ``validate_base_job_template``.
        values: Job variables; schema defaults fill in missing ones.
        env: Environment used for ``{{ $NAME }}`` placeholders.
        skyrun_variables: skyrun Variables, as a mapping or a lookup function.
        blocks: Block documents for ``{{ skyrun.blocks.* }}`` and for job variables whose
            schema has a ``block_type`` (a ``TYPE/NAME`` reference becomes the block's
            data); ``None`` keeps both as they are.

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
    if blocks is not None:
        # After validation: the schema checks the reference the user wrote, not the data.
        try:
            effective = resolve_block_references(effective, variables, blocks)
        except BlockReferenceError as exc:
            raise JobTemplateError.from_problems("invalid job variables", [str(exc)]) from None

    references = References(env=env, variables=skyrun_variables, blocks=blocks)

    def resolve(name: str, path: str, whole: bool) -> Resolution:
        shared = resolve_shared(name, path, references)
        if shared is not None:
            if shared.problem is not None and is_env_placeholder(name):
                return Resolution(problem=shared.problem + ENV_HINT)
            return shared
        if name in effective:
            return Resolution(value=effective[name])
        if whole and name in properties and name not in required:
            return Resolution(value=None)
        return Resolution(problem=f"{path}: variable '{name}' has no value; {SET_IT_HINT}")

    rendered, problems = substitute(template["job_configuration"], resolve, "job_configuration")
    if problems:
        raise JobTemplateError.from_problems("cannot render job_configuration", problems)
    return rendered
