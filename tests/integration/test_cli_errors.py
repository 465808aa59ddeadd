"""The installed `skyrun` executable's answer to bad command lines: a usage message, never a
traceback; exit 2 for usage errors, 1 for errors a command reports, and `typer.Exit`'s own code."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

SKYRUN = Path(sys.executable).parent / "skyrun"
# Variables that make rich or Typer write colour codes or pick a width, as CI sets some of them.
TERMINAL_VARIABLES = ("FORCE_COLOR", "PY_COLORS", "GITHUB_ACTIONS", "TERMINAL_WIDTH", "TERM")


def cli_env(home: Path) -> dict[str, str]:
    """This environment without SKYRUN_* settings or colour forcing, 80 columns wide."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("SKYRUN_") and key not in TERMINAL_VARIABLES
    }
    env.update(SKYRUN_HOME=str(home), NO_COLOR="1", COLUMNS="80")
    return env


def run_cli(home: Path, *command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*command], env=cli_env(home), capture_output=True, text=True, timeout=60)


def skyrun(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return run_cli(home, str(SKYRUN), *args)


@pytest.mark.parametrize(
    ("args", "usage", "message"),
    [
        pytest.param(
            ["variable", "get"], "Usage: skyrun variable get", "Missing argument 'name'.", id="arg"
        ),
        pytest.param(
            ["flow-run", "ls", "--limit", "abc"],
            "Usage: skyrun flow-run ls [OPTIONS]",
            "Invalid value for '--limit'",
            id="integer",
        ),
        pytest.param(
            ["flow-run", "ls", "--bogus"],
            "Usage: skyrun flow-run ls [OPTIONS]",
            "No such option: --bogus",
            id="option",
        ),
        pytest.param(
            ["flow-runs", "ls"],
            "Usage: skyrun [OPTIONS] COMMAND [ARGS]...",
            "No such command 'flow-runs'.",
            id="command",
        ),
    ],
)
def test_usage_error_prints_usage_once_and_exits_2(
    tmp_path: Path, args: list[str], usage: str, message: str
) -> None:
    result = skyrun(tmp_path, *args)
    output = result.stdout + result.stderr
    assert result.returncode == 2, output
    assert "Traceback" not in output
    assert result.stdout == ""
    assert result.stderr.startswith(usage), result.stderr
    assert result.stderr.count("Usage:") == 1
    assert "--help' for help." in result.stderr
    assert message in result.stderr


@pytest.mark.parametrize("args", [[], ["flow-run"]], ids=["skyrun", "group"])
def test_bare_group_prints_its_help_as_typer_does(tmp_path: Path, args: list[str]) -> None:
    result = skyrun(tmp_path, *args)
    # Typer's standalone mode exits 2 here: the command line was incomplete.
    assert result.returncode == 2, result.stdout + result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    assert result.stderr == ""
    assert " ".join(["Usage:", "skyrun", *args]) in result.stdout
    assert "Commands" in result.stdout


def test_help_exits_0(tmp_path: Path) -> None:
    result = skyrun(tmp_path, "flow-run", "--help")
    assert result.returncode == 0, result.stderr
    assert "Usage: skyrun flow-run" in result.stdout


def test_cli_error_prints_brackets_literally_on_one_line(tmp_path: Path) -> None:
    # Rich would read "[red]...[/red]" as markup and drop it; the message is longer than the
    # 80 columns, which must not break it into lines.
    result = skyrun(tmp_path, "config", "set", "SKYRUN_[red]NOPE[/red]=1")
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    assert result.stderr.startswith(
        "Error: unknown setting 'SKYRUN_[red]NOPE[/red]'; known settings: SKYRUN_HOME, "
    )
    assert result.stderr.count("\n") == 1 and len(result.stderr) > 80


def test_a_bad_setting_is_named_with_its_source_on_one_line(tmp_path: Path) -> None:
    (tmp_path / "profile.json").write_text('{"SKYRUN_CLIENT_TIMEOUT": "soon"}')
    result = skyrun(tmp_path, "flow-run", "ls")
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    assert result.stderr.startswith(
        f"Error: invalid setting SKYRUN_CLIENT_TIMEOUT='soon' (from {tmp_path / 'profile.json'}): "
    )
    assert result.stderr.count("\n") == 1


def test_worker_type_error_keeps_its_brackets(tmp_path: Path) -> None:
    result = skyrun(tmp_path, "worker", "start", "--pool", "p", "--type", "gcp[x]")
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    assert result.stderr.startswith("Error: unknown worker type 'gcp[x]'")


def test_typer_exit_keeps_its_code(tmp_path: Path) -> None:
    script = textwrap.dedent(
        """
        import sys

        import typer

        from skyrun.cli.main import app, run


        @app.command("stop-with")
        def stop_with(code: int) -> None:
            raise typer.Exit(code)


        sys.argv = ["skyrun", "stop-with", sys.argv[1]]
        run()
        """
    )
    assert run_cli(tmp_path, sys.executable, "-c", script, "3").returncode == 3
    assert run_cli(tmp_path, sys.executable, "-c", script, "0").returncode == 0


def test_module_entry_point_reports_usage_errors_too(tmp_path: Path) -> None:
    # Workers start flow runs with `python -m skyrun.cli.main flow-run execute ...`.
    result = run_cli(tmp_path, sys.executable, "-m", "skyrun.cli.main", "flow-run", "execute", "-x")
    assert result.returncode == 2, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    assert "No such option: -x" in result.stderr
