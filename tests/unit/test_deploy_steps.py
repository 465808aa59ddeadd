"""The step runner (names, ids and outputs, placeholders), set_working_directory and run_shell_script."""

from __future__ import annotations

import io
import os
import shlex
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from skyrun.deploy.steps import STEP_MODULES, StepError, run_steps
from skyrun.deploy.steps.gcs import _local_path
from skyrun.deploy.steps.shell import run_shell_script
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


WAIT_FOR_FLAG = """\
import pathlib, sys, time
print("first", flush=True)
flag = pathlib.Path(sys.argv[1])
deadline = time.monotonic() + 30
while not flag.exists():
    if time.monotonic() > deadline:
        sys.exit(3)
    time.sleep(0.02)
print("second")
"""


class FlagOnFirstLine(io.StringIO):
    """A stdout that creates `flag` when the child's first line reaches it."""

    def __init__(self, flag: Path) -> None:
        super().__init__()
        self.flag = flag

    def write(self, text: str) -> int:
        if "first" in text:
            self.flag.touch()
        return super().write(text)


def test_run_shell_script_streams_each_line_while_the_command_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The child waits for the flag that only its first line, printed, creates: output
    # shown only once the command ended would leave it waiting until it gives up.
    child = tmp_path / "child.py"
    child.write_text(WAIT_FOR_FLAG)
    flag = tmp_path / "flag"
    stdout = FlagOnFirstLine(flag)
    monkeypatch.setattr(sys, "stdout", stdout)
    outputs = run_shell_script(f"{sys.executable} {child} {flag}")
    assert stdout.getvalue() == "first\nsecond\n"
    assert outputs == {"stdout": "first\nsecond", "stderr": ""}


def test_stream_output_false_prints_nothing(capfd: pytest.CaptureFixture[str]) -> None:
    outputs = run_shell_script("echo quiet", stream_output=False)
    assert outputs["stdout"] == "quiet"
    assert capfd.readouterr() == ("", "")


def test_stderr_streams_to_stderr_and_is_captured(capsys: pytest.CaptureFixture[str]) -> None:
    code = "import sys; print('out'); print('warn', file=sys.stderr)"
    outputs = run_shell_script(f"{sys.executable} -c {shlex.quote(code)}")
    assert outputs == {"stdout": "out", "stderr": "warn"}
    captured = capsys.readouterr()
    assert (captured.out, captured.err) == ("out\n", "warn\n")


def test_outputs_are_the_last_commands(tmp_path: Path) -> None:
    outputs = run_shell_script("echo one\n\necho '  two  '", stream_output=False)
    assert outputs == {"stdout": "two", "stderr": ""}


def test_the_first_failure_stops_the_script_and_names_line_code_and_stderr(
    tmp_path: Path,
) -> None:
    never = tmp_path / "never"
    code = "import sys; print('first', file=sys.stderr); print('disk full', file=sys.stderr); sys.exit(4)"
    script = f"echo ok\n{sys.executable} -c {shlex.quote(code)}\ntouch {never}"
    with pytest.raises(StepError) as info:
        run_shell_script(script, stream_output=False)
    assert str(info.value).startswith("script line 2: ")
    assert str(info.value).endswith("exited with code 4: disk full")
    assert not never.exists()


def test_a_failure_without_stderr_names_the_last_stdout_line() -> None:
    with pytest.raises(StepError, match=r"exited with code 1: nothing to do$"):
        run_shell_script("sh -c 'echo nothing to do; exit 1'", stream_output=False)


def test_directory_is_where_commands_run(tmp_path: Path) -> None:
    outputs = run_shell_script("pwd", directory=str(tmp_path), stream_output=False)
    assert outputs["stdout"] == str(tmp_path)
    with pytest.raises(StepError, match=r"directory '/no/such/place' does not exist"):
        run_shell_script("pwd", directory="/no/such/place")


def test_expand_env_vars_reads_env_then_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SKYRUN_TEST_OUTER", "outer")
    outputs = run_shell_script(
        "echo $SKYRUN_TEST_OUTER-${INNER} $$HOME",
        env={"INNER": "inner"},
        expand_env_vars=True,
        stream_output=False,
    )
    assert outputs["stdout"] == "outer-inner $HOME"


def test_without_expand_env_vars_the_script_is_literal() -> None:
    outputs = run_shell_script("echo $HOME", stream_output=False)
    assert outputs["stdout"] == "$HOME"


@pytest.mark.parametrize(
    ("script", "fragment"),
    [
        (
            "echo ok\necho $SKYRUN_TEST_SURELY_UNSET",
            "script line 2: 'echo $SKYRUN_TEST_SURELY_UNSET': environment variable 'SKYRUN_TEST_SURELY_UNSET' is not set",
        ),
        ("echo ${not a name}", "'${not a name}' is not a variable reference"),
    ],
)
def test_expand_env_vars_errors_name_the_variable(script: str, fragment: str) -> None:
    with pytest.raises(StepError) as info:
        run_shell_script(script, expand_env_vars=True, stream_output=False)
    assert fragment in str(info.value)


@pytest.mark.parametrize(
    ("script", "fragment"),
    [
        ("echo 'unclosed", 'script line 1: "echo \'unclosed": cannot be split into words'),
        ("skyrun-no-such-command --x", "command 'skyrun-no-such-command' not found"),
        ("ls | wc -l", "exited with code"),
    ],
)
def test_lines_that_cannot_run_are_explained(script: str, fragment: str) -> None:
    with pytest.raises(StepError) as info:
        run_shell_script(script, stream_output=False)
    assert fragment in str(info.value)


def test_a_shell_failure_through_the_runner_names_the_step() -> None:
    with pytest.raises(StepError) as info:
        run_steps([{"run_shell_script": {"script": "true\nfalse", "stream_output": False}}])
    assert (
        str(info.value)
        == "pull step 1 (run_shell_script): script line 2: 'false' exited with code 1"
    )


@pytest.mark.parametrize("relative", ["../escaped.py", "a/../../escaped.py", "/etc/passwd", ""])
def test_an_object_name_leaving_the_pull_directory_is_refused(
    tmp_path: Path, relative: str
) -> None:
    # The emulator cannot store such names, so this is checked on the path logic alone.
    with pytest.raises(StepError, match=r"would be written outside"):
        _local_path(tmp_path, relative, "app/" + relative)
    assert _local_path(tmp_path, "a/b.py", "app/a/b.py") == tmp_path / "a" / "b.py"
