"""skyrun ships a `py.typed` marker, so a user's type checker reads the installed package's
annotations: `@flow` and `@task` keep the decorated function's parameters and return type.

mypy runs in a subprocess from an empty directory with an empty config (not this repo's
`[tool.mypy]`, which checks `src/` as source), so it finds skyrun the way a user's mypy
does: in site-packages. The dev install is editable, a `.pth` line naming `src/`; mypy
treats that directory as installed packages too and, without `py.typed`, skips skyrun
("missing library stubs or py.typed marker") and types everything from it as Any.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import skyrun

USER_FLOWS = """
from skyrun import flow, task


@task
def double(x: int) -> int:
    return 2 * x


@flow
def pipeline(n: int = 3) -> int:
    return double(n)


reveal_type(pipeline(3))
reveal_type(double.submit(2))
reveal_type(double.submit(2).result())
pipeline("three")
double(x=[1])
"""

INT = r"(builtins\.)?int"  # mypy 2 prints builtins by their short name


def line_of(code: str) -> int:
    """The line number of `code` in USER_FLOWS, as mypy reports it."""
    [number] = [n for n, line in enumerate(USER_FLOWS.splitlines(), 1) if line == code]
    return number


def run_user_mypy(tmp_path: Path) -> subprocess.CompletedProcess[str]:
    (tmp_path / "user_flows.py").write_text(USER_FLOWS)
    (tmp_path / "mypy.ini").write_text("[mypy]\n")
    env = {key: value for key, value in os.environ.items() if key != "MYPYPATH"}
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "mypy",
            "--config-file",
            "mypy.ini",
            "--cache-dir",
            os.devnull,
            "--hide-error-context",
            "--no-error-summary",
            "user_flows.py",
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )


def test_the_installed_package_has_the_py_typed_marker() -> None:
    assert (Path(skyrun.__file__).parent / "py.typed").is_file()


def test_a_users_mypy_sees_flow_and_task_signatures(tmp_path: Path) -> None:
    result = run_user_mypy(tmp_path)
    output = result.stdout + result.stderr
    assert "py.typed" not in output and "import-untyped" not in output, output

    reports: dict[int, list[str]] = {}
    for match in re.finditer(r"^user_flows\.py:(\d+): (\w+: .*)$", result.stdout, re.MULTILINE):
        reports.setdefault(int(match.group(1)), []).append(match.group(2))

    def report(code: str) -> str:
        [message] = reports.pop(line_of(code), [f"nothing reported for {code!r}"])
        return message

    assert re.fullmatch(f'note: Revealed type is "{INT}"', report("reveal_type(pipeline(3))"))
    assert re.fullmatch(
        rf'note: Revealed type is "skyrun\.sdk\.futures\.SkyrunFuture\[{INT}\]"',
        report("reveal_type(double.submit(2))"),
    )
    assert re.fullmatch(
        f'note: Revealed type is "{INT}"', report("reveal_type(double.submit(2).result())")
    )
    flow_error = report('pipeline("three")')
    assert flow_error.startswith("error:") and flow_error.endswith("[arg-type]")
    assert 'incompatible type "str"; expected "int"' in flow_error
    task_error = report("double(x=[1])")
    assert task_error.startswith("error:") and task_error.endswith("[arg-type]")
    assert 'expected "int"' in task_error
    assert reports == {}, f"unexpected reports: {reports}"
    assert result.returncode == 1  # the two errors above, and nothing else
