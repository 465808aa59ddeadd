"""Base job templates: validation, job-variable merging and rendering.

A work pool's *base job template* is a JSON object with exactly two keys::

    {
        "job_configuration": {...any JSON with "{{ name }}" placeholders...},
        "variables": {...a JSON Schema object with "properties" (and "required")...},
    }

Placeholders come in three kinds:

* ``{{ name }}`` -- a job variable, which must be declared in ``variables.properties``;
* ``{{ $NAME }}`` -- the environment variable ``NAME`` of the process rendering the job;
* ``{{ skyrun.variables.NAME }}`` -- the skyrun Variable ``NAME`` (and
  ``{{ skyrun.blocks.TYPE.NAME[.FIELD] }}``, a block); these need no declaration.  Any
  other ``skyrun.*`` placeholder is an error (see :mod:`skyrun.templating`).

Job variables are resolved with the precedence *work pool defaults < deployment
job_variables < flow run job_variables*; the ``env`` dict is merged key by key.

This module is pure logic: no I/O and no server imports.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError

from skyrun.jobs.render import (
    JobTemplateError,
    SkyrunVariables,
    defaults_from_schema,
    is_env_placeholder,
    is_skyrun_placeholder,
    merge_job_variables,
    properties_of,
    render_validated,
    required_of,
    template_placeholders,
)
from skyrun.templating import BlockLookup, References, resolve_shared
from skyrun.validation import schema_path, schema_problems
from skyrun.values import parse_value

__all__ = [
    "JobTemplateError",
    "defaults_from_schema",
    "merge_job_variables",
    "prepare_job",
    "render_job_configuration",
    "set_variable_default",
    "template_placeholders",
    "unused_variable_warnings",
    "validate_base_job_template",
]

TEMPLATE_KEYS = ("job_configuration", "variables")


def _type_name(value: Any) -> str:
    return type(value).__name__


def _quoted(names: list[str]) -> str:
    return ", ".join(f"'{n}'" for n in names)


def _check_structure(template: Any) -> None:
    if not isinstance(template, dict):
        raise JobTemplateError(
            "base job template must be a JSON object with the keys 'job_configuration' "
            f"and 'variables', got {_type_name(template)}"
        )
    missing = [k for k in TEMPLATE_KEYS if k not in template]
    if missing:
        raise JobTemplateError(
            f"base job template is missing the key(s) {_quoted(missing)}; it must have "
            "exactly the keys 'job_configuration' and 'variables' (use {} for either if empty)"
        )
    unknown = sorted(str(k) for k in template if k not in TEMPLATE_KEYS)
    if unknown:
        raise JobTemplateError(
            f"base job template has unknown key(s) {_quoted(unknown)}; only "
            "'job_configuration' and 'variables' are allowed -- move job settings into "
            "job_configuration and variable declarations into variables.properties"
        )
    if not isinstance(template["job_configuration"], dict):
        raise JobTemplateError(
            "job_configuration must be a JSON object, got "
            f"{_type_name(template['job_configuration'])}"
        )
    variables = template["variables"]
    if not isinstance(variables, dict):
        raise JobTemplateError(
            "variables must be a JSON Schema object such as "
            f'{{"type": "object", "properties": {{...}}}}, got {_type_name(variables)}'
        )
    try:
        Draft202012Validator.check_schema(variables)
    except SchemaError as exc:
        where = "variables" + schema_path(exc.path)
        raise JobTemplateError(
            f"variables is not a valid JSON Schema: {exc.message} (at {where}); "
            "fix the schema so it is valid JSON Schema (draft 2020-12)"
        )
    if variables.get("type", "object") != "object":
        raise JobTemplateError(
            "variables must describe an object ('type': 'object'), got "
            f"'type': {json.dumps(variables['type'])}"
        )


def _default_errors(root: Draft202012Validator, schema: Any) -> list[str]:
    """Messages for a property's ``default`` that is invalid against its own schema."""
    if not isinstance(schema, dict) or "default" not in schema:
        return []
    # evolve() keeps the root's reference resolver, so "$ref": "#/$defs/..." works.
    return schema_problems(root.evolve(schema=schema), schema["default"])


def validate_base_job_template(template: dict[str, Any]) -> list[str]:
    """Check that a base job template is well formed.

    Args:
        template: The template, ``{"job_configuration": {...}, "variables": {...}}``.

    Returns:
        Warnings that do not make the template unusable: one per variable that is
        declared in ``variables.properties`` but never used in ``job_configuration``.

    Raises:
        JobTemplateError: If the top-level keys are not exactly ``job_configuration`` and
            ``variables``, ``variables`` is not a valid JSON Schema object, ``required``
            names an undeclared variable, a placeholder names an undeclared variable
            (``$ENV`` and ``skyrun.*`` placeholders need no declaration), a ``skyrun.*``
            placeholder is of an unknown kind, or a
            variable's ``default`` is invalid against its own schema.
    """
    _check_structure(template)
    variables: dict[str, Any] = template["variables"]
    properties = properties_of(variables)
    problems: list[str] = []

    for name in required_of(variables):
        if name not in properties:
            problems.append(
                f"variables.required lists '{name}', which is not declared in "
                "variables.properties; declare it or remove it from required"
            )

    for path, name in _variable_placeholders(template["job_configuration"]):
        if name not in properties:
            problems.append(
                f"{path}: placeholder '{{{{ {name} }}}}' refers to variable '{name}', which "
                "is not declared in variables.properties; declare it there or fix the "
                "placeholder"
            )

    # With no sources every known kind is kept, so only unknown `skyrun.*` names speak.
    for path, name in template_placeholders(template["job_configuration"]):
        outcome = resolve_shared(name, path, References())
        if outcome is not None and outcome.problem is not None:
            problems.append(outcome.problem)

    root = Draft202012Validator(variables)
    for name, schema in properties.items():
        reasons = _default_errors(root, schema)
        if reasons:
            problems.append(
                f"variable '{name}' has an invalid default: {'; '.join(reasons)}; "
                "fix the default or the variable's schema"
            )

    if len(problems) > 1:
        # No "invalid base job template" header: the API and the worker, which show
        # this message, already say what was invalid ("invalid base job template:
        # 2 problems: ..."), and each problem names its variable or path.
        bullets = "\n".join(f"  - {problem}" for problem in problems)
        raise JobTemplateError(f"{len(problems)} problems:\n{bullets}", problems)
    if problems:
        raise JobTemplateError(problems[0], problems)
    return unused_variable_warnings(template)


def _variable_placeholders(job_configuration: Any) -> list[tuple[str, str]]:
    """(path, name) of each placeholder that names a job variable (not $ENV or skyrun.*)."""
    return [
        (path, name)
        for path, name in template_placeholders(job_configuration)
        if not (is_env_placeholder(name) or is_skyrun_placeholder(name))
    ]


def unused_variable_warnings(template: dict[str, Any]) -> list[str]:
    """Warnings for the variables a base job template declares but never uses.

    Args:
        template: A base job template that :func:`validate_base_job_template` accepts.

    Returns:
        One warning per variable in ``variables.properties`` that no placeholder in
        ``job_configuration`` names, in declaration order.
    """
    used = {name for _, name in _variable_placeholders(template["job_configuration"])}
    return [
        f"variable '{name}' is declared but not used in job_configuration"
        for name in properties_of(template["variables"])
        if name not in used
    ]


def render_job_configuration(
    template: dict[str, Any],
    values: Mapping[str, Any],
    *,
    env: Mapping[str, str],
    skyrun_variables: SkyrunVariables,
    blocks: BlockLookup | None = None,
) -> dict[str, Any]:
    """Render a base job template's ``job_configuration`` with job variables.

    The template is validated first (see :func:`validate_base_job_template`).  Schema
    defaults fill in variables missing from ``values`` (``env`` is merged key by key);
    a ``None`` value counts as "no value".  The declared variables are then validated
    against the ``variables`` schema; undeclared keys in ``values`` are ignored.

    Substitution rules:

    * A string that is exactly one placeholder (after stripping whitespace) becomes the
      value itself with its JSON type kept (int, bool, dict, list, ...).
    * A placeholder embedded in other text is replaced by ``str(value)``, or by
      ``json.dumps(value)`` for dicts and lists.
    * ``{{ $NAME }}`` is replaced by ``env["NAME"]``; ``{{ skyrun.variables.NAME }}`` by
      the skyrun Variable ``NAME``; other ``{{ skyrun.* }}`` placeholders are kept as is.
    * A variable without a value is an error, **except** that a variable declared in the
      schema but not listed in ``required`` renders as ``None`` when it is a whole-value
      placeholder (so optional settings such as ``working_dir`` become null).  Embedded in
      text, such a variable is still an error.

    Args:
        template: A base job template.
        values: Job variables, usually from :func:`merge_job_variables`.
        env: Environment used for ``{{ $NAME }}`` placeholders.
        skyrun_variables: skyrun Variables, as a mapping or a lookup function (which
            signals a missing Variable by raising ``KeyError`` or returning ``None``).
        blocks: Block documents (``{{ skyrun.blocks.* }}``, and job variables whose schema
            names a ``block_type``); ``None`` keeps them unresolved.

    Returns:
        A new ``job_configuration``; the template and values are not modified.

    Raises:
        JobTemplateError: If the template is invalid, a job variable fails validation, or a
            placeholder cannot be resolved.  The message names each variable and path.
    """
    validate_base_job_template(template)
    return render_validated(template, values, env, skyrun_variables, blocks)


def prepare_job(
    template: dict[str, Any],
    deployment_job_variables: Mapping[str, Any] | None,
    run_job_variables: Mapping[str, Any] | None,
    *,
    env: Mapping[str, str],
    skyrun_variables: SkyrunVariables,
    blocks: BlockLookup | None = None,
) -> dict[str, Any]:
    """Validate, merge and render: the job configuration for one flow run.

    Args:
        template: The work pool's base job template.
        deployment_job_variables: The deployment's ``job_variables``, if any.
        run_job_variables: The flow run's ``job_variables``, if any.
        env: Environment used for ``{{ $NAME }}`` placeholders.
        skyrun_variables: skyrun Variables, as a mapping or a lookup function.
        blocks: Block documents, as for :func:`render_job_configuration`.

    Returns:
        The rendered ``job_configuration``.

    Raises:
        JobTemplateError: As for :func:`validate_base_job_template` and
            :func:`render_job_configuration`.
    """
    validate_base_job_template(template)
    defaults = defaults_from_schema(template["variables"])
    values = merge_job_variables(defaults, deployment_job_variables, run_job_variables)
    return render_validated(template, values, env, skyrun_variables, blocks)


def set_variable_default(template: dict[str, Any], name: str, raw_value: str) -> dict[str, Any]:
    """Return a copy of ``template`` with a new default for one variable.

    ``raw_value`` is parsed as JSON when it parses (``"4"`` -> ``4``, ``'["a"]'`` -> a
    list) and kept as a string otherwise; for a property whose ``type`` is ``"string"``
    it is always kept verbatim.  Used by ``work-pool update --set VAR=VALUE``.

    Args:
        template: A base job template; it is not modified.
        name: The variable, which must be declared in ``variables.properties``.
        raw_value: The new default as typed on the command line.

    Returns:
        A new template with ``variables.properties[name].default`` set.

    Raises:
        JobTemplateError: If the variable is not declared (the message lists the declared
            ones) or the value is invalid against the variable's schema.
    """
    _check_structure(template)
    new_template = copy.deepcopy(template)
    variables: dict[str, Any] = new_template["variables"]
    properties = properties_of(variables)
    if name not in properties:
        known = _quoted(list(properties)) if properties else "(none)"
        raise JobTemplateError(
            f"unknown variable '{name}'; this work pool's base job template declares: {known}"
        )
    schema = properties[name]
    if schema is True:
        schema = properties[name] = {}
    if not isinstance(schema, dict):
        raise JobTemplateError(
            f"variable '{name}' has the schema {json.dumps(schema)}, which accepts no "
            "value; fix the variable's schema first"
        )
    value = parse_value(raw_value, schema)
    schema["default"] = value
    reasons = _default_errors(Draft202012Validator(variables), schema)
    if reasons:
        raise JobTemplateError(
            f"invalid value for variable '{name}' (--set {name}={raw_value}): {'; '.join(reasons)}"
        )
    return new_template
