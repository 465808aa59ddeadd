"""`skyrun config`: set, unset and view settings in the profile file ($SKYRUN_HOME/profile.json).

Environment variables win over the profile, so `view` says where each value comes from.
"""

from __future__ import annotations

import difflib
import os
from typing import Annotated, Any

import typer
from pydantic import TypeAdapter, ValidationError

from skyrun.cli.errors import CLIError
from skyrun.cli.output import OutputFormat, OutputOption, print_json
from skyrun.settings import (
    ENV_PREFIX,
    Settings,
    profile_path,
    read_profile,
    setting_names,
    write_profile,
)

app = typer.Typer(help="View and change skyrun settings.", no_args_is_help=True)

SECRET_SETTINGS = frozenset({"SKYRUN_API_KEY", "SKYRUN_ENCRYPTION_KEY"})
MASK = "********"
# SKYRUN_HOME locates the profile itself, so the profile cannot move it.
ENV_ONLY_SETTINGS = frozenset({"SKYRUN_HOME"})


def check_setting_name(name: str) -> str:
    """`name` if it is a setting's SKYRUN_* name; otherwise a CLIError suggesting the right one."""
    names = setting_names()
    if name in names:
        return name
    # Compare without the shared prefix, or every name would look close to every other.
    bare = name.upper().removeprefix(ENV_PREFIX)
    bare_names = [known.removeprefix(ENV_PREFIX) for known in names]
    suggestions = [ENV_PREFIX + match for match in difflib.get_close_matches(bare, bare_names, n=3)]
    if suggestions:
        hint = "did you mean " + " or ".join(suggestions) + "?"
    else:
        hint = "known settings: " + ", ".join(names)
    raise CLIError(f"unknown setting {name!r}; {hint}")


def check_setting_value(name: str, value: str) -> None:
    """Refuse a value the setting could not load, before it breaks every later command."""
    if value == "":
        raise CLIError(f"{name} needs a value; to remove it use 'skyrun config unset {name}'")
    field = Settings.model_fields[name[len(ENV_PREFIX) :].lower()]
    if field.annotation is None:  # an untyped setting takes any text
        return
    # With the field's metadata: its bounds and checks (a port is 1-65535), not just its type.
    checked: Any = (
        Annotated[(field.annotation, *field.metadata)] if field.metadata else field.annotation
    )
    try:
        TypeAdapter(checked).validate_python(value)
    except ValidationError as exc:
        raise CLIError(f"{name}={value!r} is invalid: {exc.errors()[0]['msg']}") from None


def parse_assignment(assignment: str) -> tuple[str, str]:
    name, sep, value = assignment.partition("=")
    if not sep:
        raise CLIError(f"expected KEY=VALUE, got {assignment!r} (e.g. SKYRUN_API_URL=http://...)")
    name = check_setting_name(name.strip())
    if name in ENV_ONLY_SETTINGS:
        raise CLIError(
            f"{name} locates the profile file itself, so it cannot be stored in it; "
            "set it in the environment instead"
        )
    check_setting_value(name, value)
    return name, value


@app.command("set")
def set_(
    assignments: Annotated[
        list[str], typer.Argument(metavar="KEY=VALUE...", help="e.g. SKYRUN_API_URL=http://...")
    ],
) -> None:
    """Store settings in the profile file (environment variables still win)."""
    updates = dict(parse_assignment(assignment) for assignment in assignments)
    profile = read_profile()
    profile.update(updates)
    path = write_profile(profile)
    for name in updates:
        typer.echo(f"Set {name} in {path}")
        if name in os.environ:
            typer.echo(
                f"Note: {name} is also set in the environment, which takes precedence.", err=True
            )


@app.command()
def unset(
    names: Annotated[list[str], typer.Argument(metavar="KEY...", help="Settings to remove.")],
) -> None:
    """Remove settings from the profile file."""
    checked = [check_setting_name(name) for name in names]
    profile = read_profile()
    missing = [name for name in checked if name not in profile]
    if missing:
        raise CLIError(f"not set in {profile_path()}: {', '.join(missing)}")
    for name in checked:
        del profile[name]
    path = write_profile(profile)
    for name in checked:
        typer.echo(f"Unset {name} in {path}")
        if name in os.environ:
            typer.echo(f"Note: {name} is still set in the environment.", err=True)


def effective_settings() -> dict[str, tuple[str, str]]:
    """Every setting set in the environment or the profile: {name: (value, "env" | "profile")}."""
    names = setting_names()
    profile = read_profile()
    found: dict[str, tuple[str, str]] = {}
    for name in names:
        if name in os.environ:
            found[name] = (os.environ[name], "env")
        elif name in profile:
            found[name] = (profile[name], "profile")
    return found


@app.command()
def view(
    show_sources: Annotated[
        bool, typer.Option("--show-sources", help="Say whether each value is from env or profile.")
    ] = False,
    show_secrets: Annotated[
        bool, typer.Option("--show-secrets", help="Show API and encryption keys unmasked.")
    ] = False,
    output: OutputOption = OutputFormat.table,
) -> None:
    """Show the settings that are set, and their effective values.

    With -o json: {NAME: value}, or {NAME: {"value": ..., "source": ...}} with --show-sources.
    """
    settings = effective_settings()
    unknown = sorted(set(read_profile()) - set(setting_names()))
    if unknown:
        typer.echo(
            f"Warning: {profile_path()} holds unknown settings, ignored: {', '.join(unknown)}",
            err=True,
        )
    shown = {
        name: (MASK if name in SECRET_SETTINGS and not show_secrets else value, source)
        for name, (value, source) in sorted(settings.items())
    }
    if output == OutputFormat.json:
        if show_sources:
            print_json({n: {"value": v, "source": s} for n, (v, s) in shown.items()})
        else:
            print_json({n: v for n, (v, _) in shown.items()})
        return
    if not shown:
        typer.echo(f"No settings are set (profile: {profile_path()}); defaults apply.")
        return
    for name, (value, source) in shown.items():
        typer.echo(f"{name}={value}" + (f"  (from {source})" if show_sources else ""))
