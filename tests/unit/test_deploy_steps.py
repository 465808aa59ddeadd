"""Pull steps: the step runner, set_working_directory and run_shell_script."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from skyrun.deploy.steps import STEPS, StepError, run_steps


@pytest.fixture(autouse=True)
def keep_cwd() -> Iterator[None]:
    cwd = os.getcwd()
    yield
    os.chdir(cwd)


def test_set_working_directory_changes_directory(tmp_path: Path) -> None:
    outputs = run_steps([{"set_working_directory": {"directory": str(tmp_path)}}])
    assert Path(os.getcwd()) == tmp_path.resolve()
    assert outputs == [{"directory": str(tmp_path.resolve())}]


def test_dotted_step_names_resolve_by_their_last_part(tmp_path: Path) -> None:
    run_steps([{"skyrun.deploy.steps.set_working_directory": {"directory": str(tmp_path)}}])
    assert Path(os.getcwd()) == tmp_path.resolve()


def test_run_shell_script_runs_each_line_with_env(tmp_path: Path) -> None:
    target = tmp_path / "made"
    outputs = run_steps(
        [
            {
                "run_shell_script": {
                    "script": f"# a comment\ntouch {target}\nprintenv GREETING",
                    "env": {"GREETING": "hi"},
                    "stream_output": False,
                }
            }
        ]
    )
    assert target.exists()
    assert outputs == [{"stdout": "hi", "stderr": ""}]


def test_a_failing_command_names_the_line_and_code() -> None:
    with pytest.raises(StepError, match=r"'false' exited with code 1"):
        run_steps([{"run_shell_script": {"script": "false", "stream_output": False}}])


def test_an_unknown_step_lists_the_known_ones() -> None:
    with pytest.raises(StepError) as info:
        run_steps([{"git_clone": {"repository": "x"}}])
    message = str(info.value)
    assert "unknown step 'git_clone'" in message
    for name in STEPS:
        assert name in message


@pytest.mark.parametrize(
    ("step", "fragment"),
    [
        ("set_working_directory", "must be a mapping with one key"),
        ({"a": {}, "b": {}}, "must be a mapping with one key"),
        ({"set_working_directory": ["x"]}, "its arguments must be a mapping"),
        ({"set_working_directory": {"path": "/"}}, "wrong arguments"),
        ({"set_working_directory": {"directory": "/no/such/dir"}}, "/no/such/dir"),
    ],
)
def test_malformed_steps_are_explained(step: object, fragment: str) -> None:
    with pytest.raises(StepError, match=fragment):
        run_steps([step])
