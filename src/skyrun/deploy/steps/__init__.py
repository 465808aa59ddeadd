"""Deploy steps (build, push, pull) and the runner that templates and runs them in order.

A step is a one-key mapping, its name to its arguments:

    {"skyrun.deploy.steps.build_docker_image": {"id": "build_image", "image_name": "app"}}

A built-in step is named `skyrun.deploy.steps.NAME` or just `NAME`; any other dotted name is
the import path of a function (a custom step). Two arguments belong to the runner: `id`, under
which the step's outputs are available to later steps as `{{ id.key }}`, and `requires`, the
packages to install first when they are missing. Every `{{ ... }}` in the arguments is
resolved just before the step runs (see `skyrun.templating`).

Step functions are imported only when a step names them: a flow run's start-up runs its pull
steps and must not import docker or cloud-storage code.
"""

from __future__ import annotations

import importlib
import inspect
import os
from collections.abc import Callable, Mapping
from typing import Any

from skyrun.deploy.steps.errors import StepError
from skyrun.templating import References, Resolution, resolve_shared, substitute

__all__ = [
    "BUILTIN_PREFIX",
    "STEP_MODULES",
    "Outputs",
    "StepError",
    "output_value",
    "parse_step",
    "render_step_arguments",
    "run_steps",
    "step_function",
]

StepFunction = Callable[..., dict[str, Any]]
# Step id -> that step's outputs.
Outputs = dict[str, dict[str, Any]]

BUILTIN_PREFIX = "skyrun.deploy.steps."

# Built-in step name -> "module:function", imported when a step names it.
STEP_MODULES: dict[str, str] = {
    "set_working_directory": "skyrun.deploy.steps.shell:set_working_directory",
    "run_shell_script": "skyrun.deploy.steps.shell:run_shell_script",
    "pip_install_requirements": "skyrun.deploy.steps.python:pip_install_requirements",
    "git_clone": "skyrun.deploy.steps.git:git_clone",
    "build_docker_image": "skyrun.deploy.steps.docker:build_docker_image",
    "push_docker_image": "skyrun.deploy.steps.docker:push_docker_image",
    "push_to_gcs": "skyrun.deploy.steps.gcs:push_to_gcs",
    "pull_from_gcs": "skyrun.deploy.steps.gcs:pull_from_gcs",
}

RUNNER_KEYS = ("id", "requires")


def parse_step(step: Any, label: str) -> tuple[str, dict[str, Any]]:
    """A step's name and its arguments (with `id` and `requires` still in them).

    Raises:
        StepError: The step is not a one-key mapping of a name to a mapping of arguments.
    """
    if not isinstance(step, Mapping) or len(step) != 1:
        raise StepError(
            f"{label} must be a mapping with one key, the step's name "
            f"(e.g. {{'set_working_directory': {{'directory': '/app'}}}}), got {step!r}"
        )
    ((name, arguments),) = step.items()
    if arguments is None:
        arguments = {}
    if not isinstance(arguments, Mapping):
        raise StepError(f"{label} ({name}): its arguments must be a mapping")
    return str(name), dict(arguments)


def _known_steps() -> str:
    return ", ".join(sorted(STEP_MODULES))


def step_function(name: str, label: str) -> StepFunction:
    """The function a step name stands for, imported now.

    Raises:
        StepError: No built-in step has that name and it is not an importable function.
    """
    short = name[len(BUILTIN_PREFIX) :] if name.startswith(BUILTIN_PREFIX) else name
    target = STEP_MODULES.get(short)
    if target is not None:
        module_name, function_name = target.split(":")
    elif "." in name and not name.startswith(BUILTIN_PREFIX):
        module_name, _, function_name = name.rpartition(".")
    else:
        raise StepError(f"{label}: unknown step {name!r}; built-in steps: {_known_steps()}")
    try:
        function = getattr(importlib.import_module(module_name), function_name)
    except (ImportError, AttributeError) as exc:
        hint = (
            f"built-in steps: {_known_steps()}; a custom step is the import path of a function "
            "(package.module.function) installed where the step runs"
        )
        if name.startswith("prefect"):
            hint += "; `skyrun init --from prefect.yaml` converts a Prefect project file"
        raise StepError(f"{label}: unknown step {name!r} ({exc}); {hint}") from exc
    if not callable(function):
        raise StepError(f"{label}: step {name!r} is not a function")
    return function


def output_value(name: str, path: str, outputs: Outputs) -> Resolution | None:
    """`{{ step_id.key[.key...] }}` from `outputs`; None when no step has that id."""
    step_id, _, key_path = name.partition(".")
    if step_id not in outputs:
        return None
    value: Any = outputs[step_id]
    if not key_path:
        return Resolution(value=value)
    for key in key_path.split("."):
        if not isinstance(value, Mapping) or key not in value:
            available = ", ".join(sorted(value)) if isinstance(value, Mapping) else "none"
            return Resolution(
                problem=f"{path}: step {step_id!r} has no output {key_path!r} "
                f"(its outputs: {available})"
            )
        value = value[key]
    return Resolution(value=value)


def render_step_arguments(
    arguments: dict[str, Any], label: str, references: References, outputs: Outputs
) -> dict[str, Any]:
    """`arguments` with every placeholder resolved from earlier outputs and `references`.

    Raises:
        StepError: Listing every placeholder that cannot be resolved, with where it is.
    """

    def resolve(name: str, path: str, whole: bool) -> Resolution:
        shared = resolve_shared(name, path, references)
        if shared is not None:
            if shared.keep:
                return Resolution(problem=f"{path}: '{{{{ {name} }}}}' cannot be resolved here")
            return shared
        found = output_value(name, path, outputs)
        if found is not None:
            return found
        known = ", ".join(sorted(outputs)) or "none"
        return Resolution(
            problem=f"{path}: '{{{{ {name} }}}}' names no earlier step's id "
            f"(ids so far: {known}); give the step an `id:` or fix the placeholder"
        )

    rendered, problems = substitute(arguments, resolve, label)
    if problems:
        raise StepError("; ".join(problems))
    return rendered


def _requirements(requires: Any, label: str) -> list[str]:
    if isinstance(requires, str):
        return [part for part in requires.replace(",", " ").split() if part]
    if isinstance(requires, list) and all(isinstance(item, str) for item in requires):
        return list(requires)
    raise StepError(f"{label}: `requires` must be a requirement string or a list of them")


def run_steps(
    steps: list[Any],
    *,
    references: References | None = None,
    outputs: Outputs | None = None,
    section: str = "pull",
) -> list[dict[str, Any]]:
    """Run steps in order, each with its placeholders resolved just before it runs.

    Args:
        steps: The steps, as written in a project file or stored on a deployment.
        references: Environment, Variables and blocks for `{{ $X }}` / `{{ skyrun.* }}`;
            default: this process's environment only.
        outputs: Outputs of steps run before (by id); each step with an `id` adds its own.
        section: What the steps are (`build`, `push`, `pull`), for messages.

    Returns:
        Each step's outputs, in order.

    Raises:
        StepError: A step is unknown, has wrong arguments, an unresolved placeholder, a
            requirement that cannot be installed, or failed.
    """
    references = references or References(env=os.environ)
    outputs = outputs if outputs is not None else {}
    results: list[dict[str, Any]] = []
    for index, step in enumerate(steps):
        label = f"{section} step {index + 1}"
        name, arguments = parse_step(step, label)
        label = f"{label} ({name})"
        step_id = arguments.pop("id", None)
        requires = arguments.pop("requires", None)
        arguments = render_step_arguments(arguments, label, references, outputs)
        if requires:
            # Imported here: it is needed only by steps that declare requirements.
            from skyrun.deploy.steps.python import ensure_requirements

            ensure_requirements(_requirements(requires, label))
        function = step_function(name, label)
        try:
            inspect.signature(function).bind(**arguments)
        except TypeError as exc:
            raise StepError(f"{label}: wrong arguments: {exc}") from exc
        try:
            result = function(**arguments)
        except StepError as exc:
            raise StepError(f"{label}: {exc}") from exc
        if result is None:
            result = {}
        if not isinstance(result, Mapping):
            raise StepError(
                f"{label}: returned a {type(result).__name__}; a step returns a mapping of "
                "its outputs (or None)"
            )
        result = dict(result)
        results.append(result)
        if step_id is not None:
            outputs[str(step_id)] = result
    return results
