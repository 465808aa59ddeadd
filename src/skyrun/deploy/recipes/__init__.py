"""Recipes: the starting `skyrun.yaml` of each way to ship a project (`skyrun init --recipe`).

Each recipe is a YAML file here, `NAME.yaml`:

    description: one line for `skyrun init`'s list
    inputs:          # what the user must give (`--field image_name=...`, or asked in a terminal)
      image_name: {description: ..., default: ...}   # no default: required
    project: {...}   # the project file, with recipe fields written `[[ image_name ]]`
    job_variables: {...}   # for the deployment `init` adds when given an entrypoint

Recipe fields use `[[ ... ]]` so that they cannot be mistaken for the `{{ ... }}` placeholders
that stay in the written file and resolve at deploy or run time. Every recipe also knows the
fields in `STANDARD_INPUTS`, given by `skyrun init` itself.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from typing import Any

import yaml

__all__ = [
    "DEPLOYMENT_INPUTS",
    "FIELD_RE",
    "STANDARD_INPUTS",
    "Recipe",
    "RecipeError",
    "RecipeInput",
    "load_recipe",
    "recipe_names",
    "render",
]

FIELD_RE = re.compile(r"\[\[\s*([a-z_][a-z0-9_]*)\s*\]\]")


class RecipeError(ValueError):
    """An unknown recipe, or fields that do not fit it; the message says what to pass."""


@dataclass(frozen=True)
class RecipeInput:
    """A value a recipe is filled in with."""

    name: str
    description: str
    default: str | None = None

    @property
    def required(self) -> bool:
        """Whether the user must give it (it has no default)."""
        return self.default is None


# Filled in by `skyrun init` from the project's folder (both may be overridden with --field).
STANDARD_INPUTS = (
    RecipeInput("name", "the project's name (default: the folder's name)", ""),
    RecipeInput("directory", "the project's folder as flow runs see it (default: its path)", ""),
)
# Optional: with `entrypoint` and `work_pool`, the written file holds a first deployment.
DEPLOYMENT_INPUTS = (
    RecipeInput("entrypoint", "a first deployment's flow, e.g. flows/weather.py:fetch", ""),
    RecipeInput("work_pool", "the work pool its runs go to", ""),
    RecipeInput("deployment_name", "its name (default: the flow function's, with -)", ""),
)


@dataclass(frozen=True)
class Recipe:
    """A recipe as read from its file."""

    name: str
    description: str
    inputs: tuple[RecipeInput, ...]
    project: dict[str, Any]
    job_variables: dict[str, Any]

    @property
    def all_inputs(self) -> tuple[RecipeInput, ...]:
        """The recipe's own inputs, then the standard and deployment ones."""
        return self.inputs + STANDARD_INPUTS + DEPLOYMENT_INPUTS

    def input_names(self) -> list[str]:
        """Every field name `--field` accepts for this recipe."""
        return [recipe_input.name for recipe_input in self.all_inputs]


def recipe_names() -> list[str]:
    """The recipes there are, sorted."""
    files = resources.files(__name__).iterdir()
    return sorted(file.name.removesuffix(".yaml") for file in files if file.name.endswith(".yaml"))


def load_recipe(name: str) -> Recipe:
    """The recipe called `name`.

    Raises:
        RecipeError: There is no such recipe; the message lists them.
    """
    names = recipe_names()
    if name not in names:
        raise RecipeError(f"unknown recipe {name!r}; recipes: {', '.join(names)}")
    data = yaml.safe_load(resources.files(__name__).joinpath(f"{name}.yaml").read_text("utf-8"))
    inputs = tuple(
        RecipeInput(
            key,
            str(spec.get("description", key)),
            None if spec.get("default") is None else str(spec["default"]),
        )
        for key, spec in (data.get("inputs") or {}).items()
    )
    return Recipe(
        name=name,
        description=" ".join(str(data["description"]).split()),
        inputs=inputs,
        project=data["project"],
        job_variables=data.get("job_variables") or {},
    )


def render(template: Any, values: Mapping[str, str]) -> Any:
    """`template` with every `[[ field ]]` in its strings replaced by `values[field]`.

    Raises:
        RecipeError: A string names a field that `values` does not hold.
    """
    if isinstance(template, str):

        def replace(match: re.Match[str]) -> str:
            field = match.group(1)
            if field not in values:
                raise RecipeError(f"recipe field [[ {field} ]] has no value")
            return values[field]

        return FIELD_RE.sub(replace, template)
    if isinstance(template, Mapping):
        return {key: render(value, values) for key, value in template.items()}
    if isinstance(template, list):
        return [render(item, values) for item in template]
    return template
