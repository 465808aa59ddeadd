"""`skyrun init`: start a project's `skyrun.yaml` from a recipe, or convert a `prefect.yaml`.

Without `--recipe`, a terminal is asked which recipe (default `local`, as Prefect's init asks);
anything else (a script, CI) gets `local`, which needs no fields, and is told so. Required
recipe fields are asked for in a terminal and otherwise listed in the error.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from skyrun.cli.errors import CLIError
from skyrun.deploy.from_prefect import PrefectConversionError, init_from_prefect
from skyrun.deploy.init import IGNORE_FILE_NAME, InitError, init_project, parse_fields
from skyrun.deploy.project import PROJECT_FILE_NAME, ProjectFileError, load_project
from skyrun.deploy.recipes import RecipeError, RecipeInput, load_recipe, recipe_names

__all__ = ["DEFAULT_RECIPE", "init_command"]

DEFAULT_RECIPE = "local"


def _interactive() -> bool:
    return sys.stdin.isatty()


def _ask(recipe_input: RecipeInput) -> str:
    # click's prompt asks again while the answer is empty.
    answer: str = typer.prompt(f"{recipe_input.name} ({recipe_input.description})")
    return answer.strip()


def _choose_recipe() -> str:
    if not _interactive():
        typer.echo(
            f"No --recipe given: using {DEFAULT_RECIPE!r} (recipes: {', '.join(recipe_names())})."
        )
        return DEFAULT_RECIPE
    typer.echo("Recipes:")
    for name in recipe_names():
        typer.echo(f"  {name}: {load_recipe(name).description}")
    while True:
        answer: str = typer.prompt("Recipe", default=DEFAULT_RECIPE)
        if answer.strip() in recipe_names():
            return answer.strip()
        typer.echo(f"No recipe {answer!r}; choose one of {', '.join(recipe_names())}.")


def _next_step(directory: Path) -> str:
    try:
        names = [
            deployment.name
            for deployment in load_project(directory / PROJECT_FILE_NAME).deployments
        ]
    except ProjectFileError as exc:
        return f"Next: fix {PROJECT_FILE_NAME}, then run `skyrun deploy --name NAME`:\n{exc}"
    if not names:
        return (
            f"Next: add a deployment under `deployments:` in {PROJECT_FILE_NAME} (an example is "
            "at its end), then run `skyrun deploy --name NAME`."
        )
    return "Next: " + "; ".join(f"skyrun deploy --name {name}" for name in names)


def _report(directory: Path, written: list[Path], what: str) -> None:
    typer.echo(f"Wrote {' and '.join(path.name for path in written)} ({what}).")
    if (directory / IGNORE_FILE_NAME) not in written:
        typer.echo(f"Kept the existing {IGNORE_FILE_NAME} (--force replaces it).")


def init_command(
    recipe: Annotated[
        str | None,
        typer.Option(
            "--recipe",
            "-r",
            help="local, git, gcs, docker or docker-gcs. Default: asked in a terminal, else local.",
            show_default=False,
        ),
    ] = None,
    field: Annotated[
        list[str] | None,
        typer.Option(
            "--field",
            "-f",
            help="A recipe field, KEY=VALUE (repeatable), e.g. --field image_name=reg/app. "
            "--field entrypoint=flows/f.py:fn --field work_pool=POOL adds a first deployment.",
            show_default=False,
        ),
    ] = None,
    force: Annotated[
        bool, typer.Option("--force", help="Replace an existing skyrun.yaml and .skyrunignore.")
    ] = False,
    from_: Annotated[
        Path | None,
        typer.Option(
            "--from",
            help="Convert this prefect.yaml instead of using a recipe.",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Write skyrun.yaml and .skyrunignore in the current folder."""
    directory = Path.cwd()
    try:
        if from_ is not None:
            if recipe is not None or field:
                raise CLIError("--from converts a prefect.yaml: give it without --recipe/--field")
            written, notes = init_from_prefect(directory, from_, force)
            _report(directory, written, f"converted from {from_}")
            if notes:
                typer.echo("Notes on the conversion:")
                for note in notes:
                    typer.echo("  - " + note.replace("\n", "\n    "))
        else:
            fields = parse_fields(field or [])
            chosen = recipe if recipe is not None else _choose_recipe()
            ask = _ask if _interactive() else None
            written = init_project(directory, chosen, fields, force=force, ask=ask)
            _report(directory, written, f"recipe {chosen}")
    except (InitError, RecipeError, PrefectConversionError) as exc:
        raise CLIError(str(exc)) from None
    typer.echo(_next_step(directory))
