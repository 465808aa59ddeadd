"""The step runner (names, ids and outputs, placeholders), set_working_directory and run_shell_script."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from skyrun.deploy.steps import STEP_MODULES, StepError, run_steps
from skyrun.templating import References


@pytest.fixture(autouse=True)
def keep_cwd() -> Iterator[None]:
    cwd = os.getcwd()
    yield
    os.chdir(cwd)


def test_set_working_directory_changes_directory(tmp_path: Path) -> None:
    outputs = run_steps([{"set_working_directory": {"directory": str(tmp_path)}}])
    assert Path(os.getcwd()) == tmp_path.resolve()
    assert outputs == [{"directory": str(tmp_path.resolve())}]


def test_built_in_steps_answer_to_their_full_name(tmp_path: Path) -> None:
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
        run_steps([{"skyrun.deploy.steps.clone_it": {"repository": "x"}}])
    message = str(info.value)
    assert message.startswith("pull step 1 (skyrun.deploy.steps.clone_it): unknown step")
    for name in STEP_MODULES:
        assert name in message


def test_a_prefect_step_name_points_at_the_converter() -> None:
    with pytest.raises(StepError, match=r"skyrun init --from prefect.yaml"):
        run_steps([{"prefect.deployments.steps.run_shell_script": {"script": "true"}}])


def test_a_custom_step_is_an_importable_function(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "my_steps.py").write_text(
        "def shout(word):\n    return {'loud': word.upper()}\n\n"
        "def quiet():\n    return None\n\n"
        "def wrong():\n    return 'text'\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    outputs = run_steps(
        [{"my_steps.shout": {"id": "s", "word": "hi"}}, {"my_steps.quiet": {}}], section="build"
    )
    assert outputs == [{"loud": "HI"}, {}]
    with pytest.raises(StepError, match=r"build step 1 \(my_steps.wrong\): returned a str"):
        run_steps([{"my_steps.wrong": {}}], section="build")


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


def test_outputs_are_available_to_later_steps_by_id(tmp_path: Path) -> None:
    outputs = run_steps(
        [
            {"set_working_directory": {"id": "here", "directory": str(tmp_path)}},
            {
                "run_shell_script": {
                    "id": "greet",
                    "script": "echo {{ here.directory }}",
                    "stream_output": False,
                }
            },
            {"run_shell_script": {"script": "echo {{ greet.stdout }}", "stream_output": False}},
        ]
    )
    assert outputs[2] == {"stdout": str(tmp_path.resolve()), "stderr": ""}


def test_a_whole_value_placeholder_keeps_its_type(tmp_path: Path) -> None:
    known: dict[str, dict[str, object]] = {"conf": {"env": {"A": "1"}}}
    outputs = run_steps(
        [
            {
                "run_shell_script": {
                    "script": "printenv A",
                    "env": "{{ conf.env }}",
                    "stream_output": False,
                }
            }
        ],
        outputs=known,
    )
    assert outputs == [{"stdout": "1", "stderr": ""}]


@pytest.mark.parametrize(
    ("argument", "fragment"),
    [
        ("{{ nobody.stdout }}", "names no earlier step's id (ids so far: none)"),
        ("{{ $SKYRUN_TEST_SURELY_UNSET }}", "environment variable 'SKYRUN_TEST_SURELY_UNSET'"),
        ("{{ skyrun.variables.x }}", "cannot be resolved here"),
        ("{{ skyrun.deployment.name }}", "unknown placeholder"),
    ],
)
def test_an_unresolved_placeholder_says_where_it_is(argument: str, fragment: str) -> None:
    with pytest.raises(StepError) as info:
        run_steps([{"run_shell_script": {"script": f"echo {argument}"}}], section="build")
    assert str(info.value).startswith("build step 1 (run_shell_script).script: ")
    assert fragment in str(info.value)


def test_a_missing_output_key_lists_the_outputs(tmp_path: Path) -> None:
    with pytest.raises(StepError, match=r"has no output 'directroy' \(its outputs: directory\)"):
        run_steps(
            [
                {"set_working_directory": {"id": "here", "directory": str(tmp_path)}},
                {"set_working_directory": {"directory": "{{ here.directroy }}"}},
            ]
        )


def test_variables_and_blocks_resolve_from_references(tmp_path: Path) -> None:
    references = References(
        env={},
        variables={"where": str(tmp_path)},
        blocks=lambda kind, name: {"path": {"sub": str(tmp_path)}},
    )
    run_steps(
        [{"set_working_directory": {"directory": "{{ skyrun.variables.where }}"}}],
        references=references,
    )
    assert Path(os.getcwd()) == tmp_path.resolve()
    os.chdir("/")
    run_steps(
        [{"set_working_directory": {"directory": "{{ skyrun.blocks.local.dir.path.sub }}"}}],
        references=references,
    )
    assert Path(os.getcwd()) == tmp_path.resolve()
