"""`skyrun init`: write a project's `skyrun.yaml` (from a recipe) and `.skyrunignore`.

Nothing is written until everything is known and the new project file validates, and no file
is replaced without `force`: a run that fails leaves the folder as it was.
"""

from __future__ import annotations

import textwrap
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import yaml

from skyrun._version import __version__
from skyrun.deploy.dockerfile import image_directory
from skyrun.deploy.project import PROJECT_FILE_NAME, ProjectFileError, parse_project
from skyrun.deploy.recipes import DEPLOYMENT_INPUTS, Recipe, RecipeError, RecipeInput, load_recipe
from skyrun.deploy.recipes import render as render_recipe

__all__ = [
    "DEFAULT_IGNORE",
    "IGNORE_FILE_NAME",
    "Ask",
    "InitError",
    "init_project",
    "parse_fields",
    "project_file_text",
    "write_project",
]

IGNORE_FILE_NAME = ".skyrunignore"

# gitignore patterns. skyrun.yaml itself stays in: the image carries its own project file.
DEFAULT_IGNORE = """\
# Files `skyrun deploy` leaves out of images and uploads (gitignore patterns).
.git/
.venv/
venv/
__pycache__/
*.pyc
.pytest_cache/
.mypy_cache/
.ruff_cache/
*.egg-info/
"""

# Asks the user for one recipe input; returns the answer (the CLI asks again while empty).
Ask = Callable[[RecipeInput], str]

_HEADER = """\
# skyrun.yaml: how `skyrun deploy` builds, pushes and registers this project's deployments.
{origin}
# `build` and `push` run once per `skyrun deploy`; `pull` runs where each flow run starts.
# Placeholders: {{{{ STEP_ID.KEY }}}} (an earlier step's output), {{{{ $ENV_VAR }}}},
# {{{{ skyrun.variables.NAME }}}}, {{{{ skyrun.blocks.TYPE.NAME }}}}.
"""


class InitError(ValueError):
    """`skyrun init` cannot do what was asked; the message says what to change."""


def parse_fields(pairs: list[str]) -> dict[str, str]:
    """`["image_name=app", "tag=v1"]` as a mapping.

    Raises:
        InitError: A pair has no `=`, an empty key or value, or repeats a key.
    """
    fields: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        key = key.strip()
        if not sep or not key or not value:
            raise InitError(f"--field {pair!r}: write --field KEY=VALUE, e.g. --field tag=latest")
        if key in fields:
            raise InitError(f"--field {key} is given twice; give it once")
        fields[key] = value
    return fields


def header(origin: str) -> str:
    """The comment a written project file starts with; `origin` says what made it."""
    wrapped = "\n".join(f"# {line}" for line in textwrap.wrap(origin, 96))
    return _HEADER.format(origin=wrapped)


def dump_yaml(data: Any) -> str:
    """`data` as block-style YAML, keys in their order."""
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=100)


def _example_deployment(job_variables: dict[str, Any]) -> str:
    pool: dict[str, Any] = {"name": "my-pool"}
    if job_variables:
        pool["job_variables"] = job_variables
    example = {
        "deployments": [
            {"name": "my-deployment", "entrypoint": "flows/my_flow.py:my_flow", "work_pool": pool}
        ]
    }
    lines = "".join(f"# {line}\n" for line in dump_yaml(example).splitlines())
    return (
        "\n# Add deployments, e.g. as below, then run `skyrun deploy --name my-deployment`:\n"
        + lines
    )


def _values(
    recipe: Recipe, directory: Path, fields: Mapping[str, str], ask: Ask | None
) -> dict[str, str]:
    known = recipe.input_names()
    unknown = [key for key in fields if key not in known]
    if unknown:
        raise RecipeError(
            f"recipe {recipe.name!r} has no field {', '.join(map(repr, unknown))}; "
            f"its fields: {', '.join(known)}"
        )
    name = fields.get("name", directory.name)
    values = {
        "name": name,
        "directory": fields.get("directory", str(directory)),
        # Where build_docker_image's auto Dockerfile puts the project in the image.
        "image_directory": image_directory(name),
    }
    missing = []
    for recipe_input in recipe.inputs:
        if recipe_input.name in fields:
            values[recipe_input.name] = fields[recipe_input.name]
        elif recipe_input.default is not None:
            values[recipe_input.name] = recipe_input.default
        elif ask is not None:
            values[recipe_input.name] = ask(recipe_input)
        else:
            missing.append(recipe_input)
    if missing:
        listed = "; ".join(f"{item.name} ({item.description})" for item in missing)
        how = " ".join(f"--field {item.name}=..." for item in missing)
        raise RecipeError(
            f"recipe {recipe.name!r} needs {listed}; pass {how}, or run `skyrun init` in a "
            "terminal to be asked"
        )
    for deployment_input in DEPLOYMENT_INPUTS:
        if deployment_input.name in fields:
            values[deployment_input.name] = fields[deployment_input.name]
    return values


def _deployment(recipe: Recipe, values: Mapping[str, str]) -> dict[str, Any] | None:
    entrypoint, pool = values.get("entrypoint"), values.get("work_pool")
    if entrypoint is None and pool is None:
        if "deployment_name" in values:
            raise RecipeError("--field deployment_name needs --field entrypoint=... too")
        return None
    if entrypoint is None or pool is None:
        given, other = ("entrypoint", "work_pool") if pool is None else ("work_pool", "entrypoint")
        raise RecipeError(f"--field {given} needs --field {other}=... too (a first deployment)")
    function = entrypoint.rpartition(":")[2]
    work_pool: dict[str, Any] = {"name": pool}
    if recipe.job_variables:
        work_pool["job_variables"] = recipe.job_variables
    return {
        "name": values.get("deployment_name", function.replace("_", "-")),
        "entrypoint": entrypoint,
        "parameters": {},
        "work_pool": work_pool,
    }


def project_file_text(
    recipe_name: str, directory: Path, fields: Mapping[str, str], ask: Ask | None = None
) -> str:
    """The `skyrun.yaml` that `recipe_name` gives for the project in `directory`.

    Raises:
        RecipeError: Unknown recipe or field, or missing required fields (all listed).
        InitError: The values make a project file that does not validate.
    """
    recipe = load_recipe(recipe_name)
    values = _values(recipe, directory.resolve(), fields, ask)
    project = render_recipe(recipe.project, values)
    data: dict[str, Any] = {"name": project.pop("name"), "skyrun-version": __version__}
    data.update(project)
    deployment = _deployment(recipe, values)
    data["deployments"] = [deployment] if deployment is not None else []
    text = header(f"Written by `skyrun init --recipe {recipe.name}`: {recipe.description}")
    text += "\n" + dump_yaml(data)
    if deployment is None:
        text += _example_deployment(recipe.job_variables)
    try:
        parse_project(text, PROJECT_FILE_NAME)
    except ProjectFileError as exc:
        raise InitError(f"the project file would not be valid, nothing written:\n{exc}") from None
    return text


def check_free(directory: Path, force: bool) -> None:
    """Refuse to go on when `skyrun.yaml` exists and `force` is not set.

    Raises:
        InitError: Naming the file and `--force`.
    """
    path = directory / PROJECT_FILE_NAME
    if path.exists() and not force:
        raise InitError(f"{path} exists; pass --force to replace it")


def write_project(directory: Path, text: str, force: bool) -> list[Path]:
    """Write `skyrun.yaml` and, unless one exists (or with `force`), `.skyrunignore`.

    Returns:
        The files written.

    Raises:
        InitError: `skyrun.yaml` exists and `force` is not set.
    """
    check_free(directory, force)
    project_path = directory / PROJECT_FILE_NAME
    project_path.write_text(text, encoding="utf-8")
    written = [project_path]
    ignore_path = directory / IGNORE_FILE_NAME
    # An existing ignore file is the user's: kept unless they force.
    if force or not ignore_path.exists():
        ignore_path.write_text(DEFAULT_IGNORE, encoding="utf-8")
        written.append(ignore_path)
    return written


def init_project(
    directory: Path,
    recipe: str,
    fields: Mapping[str, str],
    force: bool = False,
    ask: Ask | None = None,
) -> list[Path]:
    """Write a project's `skyrun.yaml` from `recipe`, and its `.skyrunignore`.

    Args:
        directory: The project's folder.
        recipe: A recipe's name (`local`, `git`, `gcs`, `docker`, `docker-gcs`).
        fields: Recipe field values (`--field KEY=VALUE`).
        force: Replace existing files.
        ask: Asks for each required field not in `fields`; None: missing fields are an error.

    Returns:
        The files written.

    Raises:
        InitError: `skyrun.yaml` exists and `force` is not set, or the file would not validate.
        RecipeError: Unknown recipe or field, or required fields missing (all listed).
    """
    # Checked before asking anything: answers to questions would be lost.
    check_free(directory, force)
    text = project_file_text(recipe, directory, fields, ask)
    return write_project(directory, text, force)
