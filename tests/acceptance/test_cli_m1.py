"""Acceptance: the installed `skyrun` executable's config, flow-run, task-run, artifact,
variable and api-key commands, against flows recorded by a real script (embedded SQLite), and
once against a real `skyrun server start` over HTTP."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from processes import ServerProcess
from skyrun.client.client import SkyrunClient
from skyrun.schemas.core import FlowRunCreate
from skyrun.schemas.states import StateCreate, StateType
from skyrun.settings import Settings

SKYRUN = Path(sys.executable).parent / "skyrun"

FLOW_SCRIPT = """
import sys
import time

from skyrun import flow, get_run_logger, task
from skyrun.artifacts import create_markdown_artifact


@task
def double(x: int) -> int:
    return 2 * x


@task
def add_up(values: list[int]) -> int:
    return sum(values)


@flow
def report(n: int = 3, pause: float = 0.0) -> int:
    logger = get_run_logger()
    logger.info("doubling %d numbers", n)
    total = add_up([double(i) for i in range(n)])
    time.sleep(pause)
    logger.warning("total is %d", total)
    create_markdown_artifact(f"# Report\\ntotal: {total}", key="daily-report")
    return total


if __name__ == "__main__":
    for argument in sys.argv[2:]:
        report(n=int(argument), pause=float(sys.argv[1]))
"""

# A flow that catches one task's failure and whose other task succeeds on its retry.
SHAKY_FLOW_SCRIPT = """
from skyrun import flow, task

attempts = {"flaky": 0}


@task(retries=1)
def flaky() -> str:
    attempts["flaky"] += 1
    if attempts["flaky"] == 1:
        raise RuntimeError("the first try fails")
    return "ok"


@task
def broken(x: int) -> int:
    raise ValueError(f"cannot handle {x}")


@flow
def shaky() -> str:
    try:
        broken(7)
    except ValueError:
        pass
    return flaky()


if __name__ == "__main__":
    shaky()
"""

NOT_FOUND_ID = "00000000-0000-4000-8000-000000000000"


def cli_env(home: Path, **extra: str) -> dict[str, str]:
    """This process's environment without SKYRUN_* settings, pointed at `home`."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("SKYRUN_")}
    env["SKYRUN_HOME"] = str(home)
    env.update(extra)
    return env


def skyrun(
    home: Path, *args: str, expect: int = 0, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run the `skyrun` executable and check its exit code."""
    result = subprocess.run(
        [str(SKYRUN), *args],
        env=cli_env(home, **(env or {})),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == expect, (
        f"skyrun {' '.join(args)} exited {result.returncode}, expected {expect}\n"
        f"stdout:\n{result.stdout}\nstderr:\n{result.stderr}"
    )
    return result


def skyrun_json(home: Path, *args: str, env: dict[str, str] | None = None) -> Any:
    return json.loads(skyrun(home, *args, "-o", "json", env=env).stdout)


def skyrun_many(
    home: Path, *commands: Sequence[str], expect: int = 0
) -> list[subprocess.CompletedProcess[str]]:
    """Run independent commands side by side (each start-up imports the whole server)."""
    with ThreadPoolExecutor(max_workers=3) as pool:
        return list(pool.map(lambda args: skyrun(home, *args, expect=expect), commands))


def assert_user_error(result: subprocess.CompletedProcess[str], *fragments: str) -> None:
    """Exit 1 with an `Error:` message on stderr naming each fragment, and no traceback."""
    assert result.returncode == 1
    assert "Traceback" not in result.stderr + result.stdout
    assert result.stderr.startswith("Error:"), result.stderr
    message = " ".join(result.stderr.split())  # the error console may wrap long lines
    for fragment in fragments:
        assert fragment in message, f"{fragment!r} not in {message!r}"


def run_flow_script(path: Path, env: dict[str, str], pause: float, *sizes: int) -> None:
    result = subprocess.run(
        [sys.executable, str(path), str(pause), *map(str, sizes)],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SKYRUN_HOME holding two finished runs of `report` (n=3, then n=4)."""
    home = tmp_path_factory.mktemp("home")
    script = home / "report_flow.py"
    script.write_text(FLOW_SCRIPT)
    run_flow_script(script, cli_env(home), 0.0, 3, 4)
    return home


@pytest.fixture(scope="module")
def runs(home: Path) -> list[dict[str, Any]]:
    """The recorded runs as `flow-run ls -o json` lists them, oldest first."""
    listed = skyrun_json(home, "flow-run", "ls", "--flow", "report")
    return sorted(listed, key=lambda run: run["created"])


@pytest.fixture
def embedded_client(home: Path) -> Iterator[SkyrunClient]:
    """A client in this process on the same embedded database as the CLI."""
    with pytest.MonkeyPatch.context() as patch:
        for name in [key for key in os.environ if key.startswith("SKYRUN_")]:
            patch.delenv(name)
        patch.setenv("SKYRUN_HOME", str(home))
        client = SkyrunClient(Settings())
    try:
        yield client
    finally:
        client.close()


def test_flow_run_ls_and_inspect(home: Path, runs: list[dict[str, Any]]) -> None:
    assert [run["flow_name"] for run in runs] == ["report", "report"]
    assert [run["parameters"]["n"] for run in runs] == [3, 4]
    assert {run["state"]["type"] for run in runs} == {"COMPLETED"}
    first = runs[0]

    newest_completed = ["--flow", "report", "--state", "completed", "--limit", "1", "-o", "json"]
    table, newest, inspected, inspect_table = skyrun_many(
        home,
        ["flow-run", "ls"],
        ["flow-run", "ls", *newest_completed],
        ["flow-run", "inspect", first["id"], "-o", "json"],
        ["flow-run", "inspect", first["id"]],
    )
    assert first["id"] in table.stdout and first["name"] in table.stdout
    assert "COMPLETED" in table.stdout
    assert [run["id"] for run in json.loads(newest.stdout)] == [runs[1]["id"]]
    detail = json.loads(inspected.stdout)
    assert detail["id"] == first["id"]
    assert [state["type"] for state in detail["state_history"]] == ["RUNNING", "COMPLETED"]
    assert "State history" in inspect_table.stdout and "RUNNING" in inspect_table.stdout


def test_flow_run_logs(home: Path, runs: list[dict[str, Any]]) -> None:
    run_id = runs[0]["id"]
    # Following a finished run prints what there is and stops (else skyrun_many times out).
    everything, warnings, followed = skyrun_many(
        home,
        ["flow-run", "logs", run_id],
        ["flow-run", "logs", run_id, "--level", "WARNING"],
        ["flow-run", "logs", run_id, "--follow"],
    )
    lines = everything.stdout.splitlines()
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3} \| INFO +\| .+", lines[0])
    assert any(line.endswith("| doubling 3 numbers") for line in lines)
    assert any("| WARNING  | total is 6" in line for line in lines)
    assert "total is 12" not in everything.stdout  # the other run's lines
    assert warnings.stdout.splitlines() == [line for line in lines if "| WARNING" in line]
    assert followed.stdout == everything.stdout


def test_flow_run_user_errors(home: Path, runs: list[dict[str, Any]]) -> None:
    unknown, bad_id, bad_output, bad_state, bad_level, finished = skyrun_many(
        home,
        ["flow-run", "inspect", NOT_FOUND_ID],
        ["flow-run", "logs", "not-a-uuid"],
        ["flow-run", "ls", "-o", "xml"],
        ["flow-run", "ls", "--state", "DONE"],
        ["flow-run", "logs", runs[0]["id"], "--level", "LOUD"],
        ["flow-run", "cancel", runs[0]["id"]],
        expect=1,
    )
    assert_user_error(unknown, NOT_FOUND_ID, "not found")
    assert len(unknown.stderr.strip().splitlines()) == 1
    assert_user_error(bad_id, "flow run id", "not-a-uuid")
    assert_user_error(bad_output, "--output", "'xml'")
    assert_user_error(bad_state, "'DONE'", "COMPLETED")
    assert_user_error(bad_level, "'LOUD'")
    assert_user_error(finished, "cannot cancel", "already COMPLETED")


def task_runs_cell(table: str) -> str:
    """The value of the "task runs" row of a `flow-run inspect` table."""
    match = re.search(r"│ task runs\s*│ (.*?)\s*│", table)
    assert match is not None, table
    return match.group(1)


def test_task_run_ls_and_inspect(home: Path, runs: list[dict[str, Any]]) -> None:
    first, second = runs
    listed, table, newest, flow_run_table = skyrun_many(
        home,
        ["task-run", "ls", "--flow-run", first["id"], "-o", "json"],
        ["task-run", "ls", "--flow-run", first["id"]],
        ["task-run", "ls", "--limit", "2", "-o", "json"],
        ["flow-run", "inspect", first["id"]],
    )
    task_runs = json.loads(listed.stdout)
    # Newest first: add_up ran after the three doubles it adds up.
    assert [run["name"] for run in task_runs] == ["add_up-0", "double-2", "double-1", "double-0"]
    assert {run["flow_run_id"] for run in task_runs} == {first["id"]}
    assert {(run["state"]["type"], run["run_count"]) for run in task_runs} == {("COMPLETED", 1)}
    assert "Run count" in table.stdout and "4 of 4 shown" in table.stdout
    for run in task_runs:
        assert re.search(rf"{run['id']}\s*│ {run['name']}\s*│ COMPLETED\s*│", table.stdout)
    # Without --flow-run: every flow run's task runs, so the newest are the second run's.
    assert [(run["name"], run["flow_run_id"]) for run in json.loads(newest.stdout)] == [
        ("add_up-0", second["id"]),
        ("double-3", second["id"]),
    ]
    assert task_runs_cell(flow_run_table.stdout) == "4 (4 COMPLETED)"

    add_up = task_runs[0]
    inspected, inspect_table = skyrun_many(
        home,
        ["task-run", "inspect", add_up["id"], "-o", "json"],
        ["task-run", "inspect", add_up["id"]],
    )
    assert json.loads(inspected.stdout) == add_up
    assert [state["type"] for state in add_up["state_history"]] == [
        "PENDING",
        "RUNNING",
        "COMPLETED",
    ]
    fields, history = inspect_table.stdout.split("State history")
    assert "Task run add_up-0" in fields and "__main__.add_up" in fields and first["id"] in fields
    assert re.findall(r"│ (PENDING|RUNNING|COMPLETED) ", history) == [
        "PENDING",
        "RUNNING",
        "COMPLETED",
    ]


def test_task_run_failures_and_retries(tmp_path: Path) -> None:
    script = tmp_path / "shaky_flow.py"
    script.write_text(SHAKY_FLOW_SCRIPT)
    run_flow_script(script, cli_env(tmp_path), 0.0)
    [run] = skyrun_json(tmp_path, "flow-run", "ls")
    inspected, inspect_table, listed = skyrun_many(
        tmp_path,
        ["flow-run", "inspect", run["id"], "-o", "json"],
        ["flow-run", "inspect", run["id"]],
        ["task-run", "ls", "--flow-run", run["id"], "-o", "json"],
    )
    detail = json.loads(inspected.stdout)
    assert detail["id"] == run["id"] and detail["state"]["type"] == "COMPLETED"
    assert [state["type"] for state in detail["state_history"]] == ["RUNNING", "COMPLETED"]
    assert detail["task_runs"] == {"count": 2, "by_state": {"COMPLETED": 1, "FAILED": 1}}
    assert task_runs_cell(inspect_table.stdout) == "2 (1 COMPLETED, 1 FAILED)"

    task_runs = {task_run["name"]: task_run for task_run in json.loads(listed.stdout)}
    assert task_runs.keys() == {"broken-0", "flaky-0"}
    broken, flaky = task_runs["broken-0"], task_runs["flaky-0"]
    assert broken["state"]["type"] == "FAILED" and broken["run_count"] == 1
    assert broken["state"]["message"] == "ValueError: cannot handle 7"
    assert flaky["state"]["type"] == "COMPLETED" and flaky["run_count"] == 2

    broken_table, flaky_inspected = skyrun_many(
        tmp_path,
        ["task-run", "inspect", broken["id"]],
        ["task-run", "inspect", flaky["id"], "-o", "json"],
    )
    fields, history = broken_table.stdout.split("State history")
    assert re.search(r"│ message\s*│ ValueError: cannot handle 7\s*│", fields)
    assert re.findall(r"│ (PENDING|RUNNING|FAILED) ", history) == ["PENDING", "RUNNING", "FAILED"]
    assert [
        (state["type"], state["name"])
        for state in json.loads(flaky_inspected.stdout)["state_history"]
    ] == [
        ("PENDING", "Pending"),
        ("RUNNING", "Running"),
        ("SCHEDULED", "AwaitingRetry"),
        ("RUNNING", "Retrying"),
        ("COMPLETED", "Completed"),
    ]


def test_task_run_user_errors(home: Path) -> None:
    bad_id, unknown, unknown_flow_run = skyrun_many(
        home,
        ["task-run", "inspect", "not-a-uuid"],
        ["task-run", "inspect", NOT_FOUND_ID],
        ["task-run", "ls", "--flow-run", NOT_FOUND_ID],
        expect=1,
    )
    assert_user_error(bad_id, "task run id", "not-a-uuid")
    assert_user_error(unknown, "task run", NOT_FOUND_ID, "not found")
    assert_user_error(unknown_flow_run, "flow run", NOT_FOUND_ID, "not found")
    for result in (bad_id, unknown, unknown_flow_run):
        assert len(result.stderr.strip().splitlines()) == 1


def test_cancel_scheduled_run(home: Path, embedded_client: SkyrunClient) -> None:
    flow = embedded_client.create_flow("nightly")
    scheduled = embedded_client.create_flow_run(
        FlowRunCreate(
            flow_id=flow.id,
            state=StateCreate(
                type=StateType.SCHEDULED, scheduled_time=datetime.now(UTC) + timedelta(hours=1)
            ),
        )
    )
    result = skyrun(home, "flow-run", "cancel", str(scheduled.id))
    assert "CANCELLED" in result.stdout
    state = embedded_client.read_flow_run(scheduled.id).state
    assert state is not None and state.type is StateType.CANCELLED


def test_artifacts(home: Path, runs: list[dict[str, Any]]) -> None:
    latest, of_first_run, inspected, versions = skyrun_many(
        home,
        ["artifact", "ls", "-o", "json"],
        ["artifact", "ls", "--flow-run", runs[0]["id"], "--all-versions", "-o", "json"],
        ["artifact", "inspect", "daily-report"],
        ["artifact", "inspect", "daily-report", "--all-versions", "-o", "json"],
    )
    # By default only the latest version of each key is listed.
    [newest] = json.loads(latest.stdout)
    assert newest["key"] == "daily-report" and newest["is_latest"] is True
    assert newest["flow_run_id"] == runs[1]["id"] and newest["data"].endswith("total: 12")
    [first_version] = json.loads(of_first_run.stdout)
    assert first_version["data"].endswith("total: 6") and first_version["is_latest"] is False
    assert "# Report" in inspected.stdout and "total: 12" in inspected.stdout
    assert [a["id"] for a in json.loads(versions.stdout)] == [newest["id"], first_version["id"]]

    by_id = skyrun_json(home, "artifact", "inspect", first_version["id"])
    assert by_id["data"] == first_version["data"] and by_id["is_latest"] is False
    missing = skyrun(home, "artifact", "inspect", "no-such-report", expect=1)
    assert_user_error(missing, "no-such-report", "not found")


def test_variable_round_trip(home: Path) -> None:
    skyrun_many(
        home,
        ["variable", "set", "greeting", "hello world"],
        ["variable", "set", "limits", '{"cpu": 2, "regions": ["eu"]}', "--tag", "infra"],
    )
    text, encoded, listed = skyrun_many(
        home,
        ["variable", "get", "greeting"],
        ["variable", "get", "limits"],
        ["variable", "ls", "-o", "json"],
    )
    assert text.stdout == "hello world\n"  # strings as they are, other values as JSON
    assert json.loads(encoded.stdout) == {"cpu": 2, "regions": ["eu"]}
    variables = {v["name"]: v for v in json.loads(listed.stdout)}
    assert {name: v["value"] for name, v in variables.items()} == {
        "greeting": "hello world",
        "limits": {"cpu": 2, "regions": ["eu"]},
    }
    assert variables["limits"]["tags"] == ["infra"]

    skyrun(home, "variable", "unset", "greeting")
    gone = skyrun(home, "variable", "get", "greeting", expect=1)
    assert_user_error(gone, "greeting", "not found")


def test_api_keys(home: Path) -> None:
    shown, created = skyrun_many(
        home, ["api-key", "create", "ci"], ["api-key", "create", "deploy-bot", "-o", "json"]
    )
    match = re.search(r"sky_\S+", shown.stdout)
    assert match is not None and "cannot be shown again" in shown.stdout
    ci_key, bot = match.group(0), json.loads(created.stdout)
    assert bot["name"] == "deploy-bot" and bot["key"].startswith("sky_" + bot["prefix"])

    table, _ = skyrun_many(home, ["api-key", "ls"], ["api-key", "revoke", "ci"])
    assert "deploy-bot" in table.stdout and bot["prefix"] in table.stdout
    listed = skyrun(home, "api-key", "ls", "-o", "json").stdout
    for output in (table.stdout, listed):
        assert ci_key not in output and bot["key"] not in output
    keys = {key["name"]: key for key in json.loads(listed)}
    assert keys["ci"]["revoked"] is True and keys["deploy-bot"]["revoked"] is False
    assert "key" not in keys["ci"]


def test_config_set_view_unset(tmp_path: Path) -> None:
    skyrun(tmp_path, "config", "set", "SKYRUN_CLIENT_TIMEOUT=12", "SKYRUN_API_KEY=sky_secret")
    view = skyrun_json(tmp_path, "config", "view", "--show-sources")
    assert view["SKYRUN_CLIENT_TIMEOUT"] == {"value": "12", "source": "profile"}
    assert view["SKYRUN_API_KEY"] == {"value": "********", "source": "profile"}
    assert view["SKYRUN_HOME"] == {"value": str(tmp_path), "source": "env"}
    assert "sky_secret" not in skyrun(tmp_path, "config", "view").stdout
    assert (
        "SKYRUN_API_KEY=sky_secret" in skyrun(tmp_path, "config", "view", "--show-secrets").stdout
    )

    # The environment wins over the profile, in `view` and in the settings skyrun loads.
    env = {"SKYRUN_CLIENT_TIMEOUT": "7"}
    view = skyrun_json(tmp_path, "config", "view", "--show-sources", env=env)
    assert view["SKYRUN_CLIENT_TIMEOUT"] == {"value": "7", "source": "env"}
    loaded = subprocess.run(
        [
            sys.executable,
            "-c",
            "from skyrun.settings import Settings; print(Settings().client_timeout)",
        ],
        env=cli_env(tmp_path, **env),
        capture_output=True,
        text=True,
        check=True,
    )
    assert loaded.stdout.strip() == "7.0"

    skyrun(tmp_path, "config", "unset", "SKYRUN_API_KEY")
    assert skyrun_json(tmp_path, "config", "view") == {
        "SKYRUN_CLIENT_TIMEOUT": "12",
        "SKYRUN_HOME": str(tmp_path),
    }
    assert_user_error(skyrun(tmp_path, "config", "unset", "SKYRUN_API_KEY", expect=1), "not set")
    assert_user_error(
        skyrun(tmp_path, "config", "set", "SKYRUN_API_UR=http://x", expect=1),
        "'SKYRUN_API_UR'",
        "did you mean SKYRUN_API_URL",
    )
    assert_user_error(
        skyrun(tmp_path, "config", "set", "SKYRUN_SERVER_PORT=abc", expect=1),
        "SKYRUN_SERVER_PORT",
    )
    assert_user_error(skyrun(tmp_path, "config", "set", "api_url", expect=1), "KEY=VALUE")
    assert json.loads((tmp_path / "profile.json").read_text()) == {"SKYRUN_CLIENT_TIMEOUT": "12"}


@pytest.fixture
def server_url(tmp_path: Path) -> Iterator[str]:
    """A real `skyrun server start` on a free port, with its own SKYRUN_HOME."""
    server = ServerProcess(tmp_path / "server-home")
    yield server.api_url
    server.stop()


def test_against_a_real_server(tmp_path: Path, server_url: str) -> None:
    script = tmp_path / "report_flow.py"
    script.write_text(FLOW_SCRIPT)
    env = {"SKYRUN_API_URL": server_url}
    client = SkyrunClient(Settings(api_url=server_url, home=tmp_path))
    flow_process = subprocess.Popen(
        [sys.executable, str(script), "2.0", "3"],
        env=cli_env(tmp_path, **env),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 20
        while not (page := client.filter_flow_runs()).items:
            assert flow_process.poll() is None, flow_process.communicate()[0]
            assert time.monotonic() < deadline, "the flow run never appeared"
            time.sleep(0.1)
        run_id = str(page.items[0].id)

        # Started while the flow sleeps: follows until it ends, then stops by itself.
        followed = skyrun(tmp_path, "flow-run", "logs", run_id, "--follow", env=env)
        assert flow_process.wait(timeout=30) == 0
    finally:
        if flow_process.poll() is None:
            flow_process.kill()
        client.close()
    assert "| doubling 3 numbers" in followed.stdout
    assert "| total is 6" in followed.stdout
    assert "Finished in state Completed" in followed.stdout

    [listed] = skyrun_json(tmp_path, "flow-run", "ls", env=env)
    assert listed["id"] == run_id and listed["state"]["type"] == "COMPLETED"
    again = skyrun(tmp_path, "flow-run", "logs", run_id, "-f", env=env)
    assert again.stdout == followed.stdout
    # The CLI spoke HTTP: nothing was written to an embedded database under its SKYRUN_HOME.
    assert not (tmp_path / "skyrun.db").exists()
