"""Acceptance: the installed `skyrun` executable's work-pool, work-queue and deployment
commands, on the embedded SQLite database under a temporary SKYRUN_HOME, and `deployment
run --watch` against a real `skyrun server start` with the flow served by `flow.serve()`."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import pytest

from processes import ServerProcess, stop, wait_for
from skyrun.jobs.process_template import PROCESS_JOB_TEMPLATE

SKYRUN = Path(sys.executable).parent / "skyrun"
T = TypeVar("T")

FLOW_FILE = '''
import time

from skyrun import flow, get_run_logger


@flow
def etl(n: int, label: str = "rows", pause: float = 0.0) -> int:
    """Load some rows.

    Args:
        n: how many rows to load
        label: what to call them
    """
    get_run_logger().info("loading %d %s", n, label)
    time.sleep(pause)
    return n
'''

DEPLOY_SCRIPT = """
from flows.etl import etl

etl.deploy(
    "nightly",
    work_pool_name="main",
    parameters={"n": 3},
    cron="0 9 * * *",
    timezone="Europe/Paris",
    tags=["etl"],
    job_variables={"env": {"STAGE": "prod"}},
)
etl.deploy("adhoc", work_pool_name="main")
"""

SERVE_SCRIPT = """
from flows.etl import etl

etl.serve("served", parameters={"n": 1}, poll_seconds=0.2)
"""

VALID_TEMPLATE = {
    "job_configuration": {"command": "{{ command }}", "env": {"MODE": "{{ mode }}"}},
    "variables": {
        "type": "object",
        "properties": {
            "command": {"type": ["string", "null"], "default": None},
            "mode": {"type": "string", "default": "fast"},
            "unused": {"type": "integer", "default": 1},
        },
    },
}


# -- helpers ----------------------------------------------------------------------


def cli_env(home: Path, **extra: str) -> dict[str, str]:
    """This process's environment without SKYRUN_* settings, pointed at `home`.

    COLUMNS is wide so that an error message stays on one physical line.
    """
    env = {key: value for key, value in os.environ.items() if not key.startswith("SKYRUN_")}
    env.update(SKYRUN_HOME=str(home), COLUMNS="1000")
    env.update(extra)
    return env


def skyrun(
    home: Path, *args: str, expect: int | None = 0, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run the `skyrun` executable; check its exit code unless `expect` is None."""
    result = subprocess.run(
        [str(SKYRUN), *args],
        env=env or cli_env(home),
        capture_output=True,
        text=True,
        timeout=120,
    )
    if expect is not None:
        assert result.returncode == expect, (
            f"skyrun {' '.join(args)} exited {result.returncode}, expected {expect}\n"
            f"stdout:\n{result.stdout}\nstderr:\n{result.stderr}"
        )
    return result


def skyrun_json(home: Path, *args: str, env: dict[str, str] | None = None) -> Any:
    return json.loads(skyrun(home, *args, "-o", "json", env=env).stdout)


def skyrun_many(
    home: Path, *commands: Sequence[str], expect: int | None = 0
) -> list[subprocess.CompletedProcess[str]]:
    """Run independent commands side by side (each start-up imports the whole server)."""
    with ThreadPoolExecutor(max_workers=3) as pool:
        return list(pool.map(lambda args: skyrun(home, *args, expect=expect), commands))


def assert_user_error(result: subprocess.CompletedProcess[str], *fragments: str) -> None:
    """Exit 1 with one `Error:` line on stderr naming each fragment, and no traceback."""
    assert result.returncode == 1, (result.returncode, result.stdout, result.stderr)
    assert "Traceback" not in result.stderr + result.stdout
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error:"), result.stderr
    for fragment in fragments:
        assert fragment in lines[0], f"{fragment!r} not in {lines[0]!r}"


def pool_names(home: Path) -> list[str]:
    return [pool["name"] for pool in skyrun_json(home, "work-pool", "ls")]


def write_project(root: Path) -> Path:
    (root / "flows").mkdir(parents=True, exist_ok=True)
    (root / "flows" / "etl.py").write_text(FLOW_FILE)
    return root


def run_script(root: Path, source: str, env: dict[str, str]) -> str:
    script = root / "script.py"
    script.write_text(source)
    result = subprocess.run(
        [sys.executable, str(script)], cwd=root, env=env, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


# -- work pools -------------------------------------------------------------------


def test_work_pool_lifecycle(tmp_path: Path) -> None:
    home = tmp_path
    skyrun_many(
        home,
        ["work-pool", "create", "main", "--type", "process", "--concurrency-limit", "3",
         "--description", "the main pool"],
        ["work-pool", "create", "spare", "--type", "process", "--paused"],
    )  # fmt: skip
    listed, table, inspected, inspect_table = skyrun_many(
        home,
        ["work-pool", "ls", "-o", "json"],
        ["work-pool", "ls"],
        ["work-pool", "inspect", "main", "-o", "json"],
        ["work-pool", "inspect", "main"],
    )
    pools = {pool["name"]: pool for pool in json.loads(listed.stdout)}
    assert pools["main"]["status"] == "NOT_READY" and pools["spare"]["status"] == "PAUSED"
    assert pools["main"]["concurrency_limit"] == 3
    assert "the main pool" in table.stdout and "PAUSED" in table.stdout
    main = json.loads(inspected.stdout)
    assert main["base_job_template"] == PROCESS_JOB_TEMPLATE
    assert [queue["name"] for queue in main["work_queues"]] == ["default"]
    assert main["workers"] == []
    for fragment in ("NOT_READY", "working_dir", "stream_output", "Work queues", "default"):
        assert fragment in inspect_table.stdout

    skyrun_many(home, ["work-pool", "pause", "main"], ["work-pool", "resume", "spare"])
    statuses = {pool["name"]: pool["status"] for pool in skyrun_json(home, "work-pool", "ls")}
    assert statuses == {"main": "PAUSED", "spare": "NOT_READY"}
    skyrun(home, "work-pool", "resume", "main")
    assert skyrun_json(home, "work-pool", "inspect", "main")["status"] == "NOT_READY"

    updated = skyrun(
        home, "work-pool", "update", "main", "--set", "working_dir=/srv/flows",
        "--set", "stream_output=false", "--concurrency-limit", "5", "--description", "changed",
    )  # fmt: skip
    assert "base job template" in updated.stdout
    main = skyrun_json(home, "work-pool", "inspect", "main")
    properties = main["base_job_template"]["variables"]["properties"]
    assert properties["working_dir"]["default"] == "/srv/flows"
    assert properties["stream_output"]["default"] is False
    assert main["concurrency_limit"] == 5 and main["description"] == "changed"

    invalid, unknown, malformed, nothing = skyrun_many(
        home,
        ["work-pool", "update", "main", "--set", "stream_output=maybe"],
        ["work-pool", "update", "main", "--set", "region=eu", "--concurrency-limit", "9"],
        ["work-pool", "update", "main", "--set", "working_dir"],
        ["work-pool", "update", "main"],
        expect=None,
    )
    assert_user_error(invalid, "stream_output", "'maybe' is not of type 'boolean'")
    assert_user_error(unknown, "unknown variable 'region'", "'working_dir'", "'stream_output'")
    assert_user_error(malformed, "--set", "NAME=VALUE", "'working_dir'")
    assert_user_error(nothing, "nothing to change")
    assert skyrun_json(home, "work-pool", "inspect", "main") == main  # all refused whole

    skyrun(home, "work-pool", "update", "main", "--no-concurrency-limit")
    assert skyrun_json(home, "work-pool", "inspect", "main")["concurrency_limit"] is None
    skyrun(home, "work-pool", "delete", "spare")
    missing, duplicate, bad_limit = skyrun_many(
        home,
        ["work-pool", "inspect", "spare"],
        ["work-pool", "create", "main", "--type", "process"],
        ["work-pool", "create", "other", "--type", "process", "--concurrency-limit", "-1"],
        expect=None,
    )
    assert_user_error(missing, "'spare' not found")
    assert_user_error(duplicate, "'main' already exists")
    assert_user_error(bad_limit, "--concurrency-limit", "-1")
    assert pool_names(home) == ["main"]


def test_bad_base_job_template_files(tmp_path: Path) -> None:
    home = tmp_path / "home"
    files = tmp_path / "files"
    files.mkdir()
    not_json = files / "not-json.json"
    not_json.write_text('{"job_configuration": {},\n  "variables": ')
    undeclared = files / "undeclared.json"
    undeclared.write_text(
        json.dumps(
            {
                "job_configuration": {"image": "{{ image }}"},
                "variables": {"type": "object", "properties": {}},
            }
        )
    )
    a_list = files / "list.json"
    a_list.write_text("[1, 2]")
    valid = files / "valid.json"
    valid.write_text(json.dumps(VALID_TEMPLATE))
    created = skyrun(home, "work-pool", "create", "custom", "-t", "process",
                     "--base-job-template", str(valid))  # fmt: skip
    # A declared but unused variable is worth a warning, not a refusal.
    assert "'unused' is declared but not used" in " ".join(created.stderr.split())
    before = skyrun_json(home, "work-pool", "inspect", "custom")
    assert before["base_job_template"] == VALID_TEMPLATE

    results = skyrun_many(
        home,
        ["work-pool", "update", "custom", "--base-job-template", str(not_json)],
        ["work-pool", "update", "custom", "--base-job-template", str(undeclared)],
        ["work-pool", "update", "custom", "--base-job-template", str(a_list)],
        ["work-pool", "update", "custom", "--base-job-template", str(files / "missing.json")],
        ["work-pool", "create", "other", "-t", "process", "--base-job-template", str(undeclared)],
        ["work-pool", "create", "third", "-t", "process", "--base-job-template", str(not_json)],
        expect=None,
    )
    assert_user_error(results[0], str(not_json), "not valid JSON", "line 2")
    assert_user_error(results[1], str(undeclared), "'{{ image }}'", "not declared")
    assert_user_error(results[2], str(a_list), "JSON object", "not a list")
    assert_user_error(results[3], "missing.json", "No such file")
    assert_user_error(results[4], str(undeclared), "'{{ image }}'")
    assert_user_error(results[5], str(not_json), "not valid JSON")
    assert skyrun_json(home, "work-pool", "inspect", "custom") == before
    assert pool_names(home) == ["custom"]

    # --set on a custom template keeps every other part of it.
    skyrun(home, "work-pool", "update", "custom", "--set", "mode=slow")
    after = skyrun_json(home, "work-pool", "inspect", "custom")["base_job_template"]
    assert after["variables"]["properties"]["mode"]["default"] == "slow"
    assert after["job_configuration"] == VALID_TEMPLATE["job_configuration"]


def test_get_default_base_job_template(tmp_path: Path) -> None:
    target = tmp_path / "template.json"
    printed, written, unknown, unknown_file = skyrun_many(
        tmp_path,
        ["work-pool", "get-default-base-job-template", "--type", "process"],
        ["work-pool", "get-default-base-job-template", "--type", "process", "--file", str(target)],
        ["work-pool", "get-default-base-job-template", "--type", "kubernetes"],
        ["work-pool", "get-default-base-job-template", "-t", "nope", "--file", str(tmp_path / "x")],
        expect=None,
    )
    assert printed.returncode == 0 and json.loads(printed.stdout) == PROCESS_JOB_TEMPLATE
    assert written.returncode == 0 and str(target) in written.stdout
    assert json.loads(target.read_text()) == PROCESS_JOB_TEMPLATE
    assert_user_error(unknown, "unknown worker type 'kubernetes'", "process", "cloud-run")
    assert_user_error(unknown_file, "'nope'")
    assert not (tmp_path / "x").exists()

    # The written file is a valid starting point for a pool of one's own.
    skyrun(tmp_path, "work-pool", "create", "mine", "-t", "process",
           "--base-job-template", str(target))  # fmt: skip


# -- work queues ------------------------------------------------------------------


def test_work_queue_commands(tmp_path: Path) -> None:
    home = tmp_path
    skyrun(home, "work-pool", "create", "main", "--type", "process")
    skyrun_many(
        home,
        ["work-queue", "create", "urgent", "-p", "main", "--concurrency-limit", "2"],
        ["work-queue", "create", "bulk", "-p", "main", "--priority", "5"],
    )
    queues = {q["name"]: q for q in skyrun_json(home, "work-queue", "ls", "-p", "main")}
    assert set(queues) == {"default", "urgent", "bulk"}
    assert (queues["urgent"]["priority"], queues["urgent"]["concurrency_limit"]) == (1, 2)
    assert queues["bulk"]["priority"] == 5 and queues["bulk"]["work_pool_name"] == "main"

    skyrun_many(
        home,
        ["work-queue", "update", "bulk", "-p", "main", "--priority", "2", "--description", "big"],
        ["work-queue", "pause", "urgent", "-p", "main"],
    )
    queues = {q["name"]: q for q in skyrun_json(home, "work-queue", "ls", "-p", "main")}
    assert queues["bulk"]["priority"] == 2 and queues["bulk"]["description"] == "big"
    assert queues["urgent"]["is_paused"] is True
    table = skyrun(home, "work-queue", "ls", "-p", "main").stdout
    assert "urgent" in table and "big" in table

    skyrun_many(
        home,
        ["work-queue", "resume", "urgent", "-p", "main"],
        ["work-queue", "update", "urgent", "-p", "main", "--no-concurrency-limit"],
    )
    urgent = {q["name"]: q for q in skyrun_json(home, "work-queue", "ls", "-p", "main")}["urgent"]
    assert urgent["is_paused"] is False and urgent["concurrency_limit"] is None

    skyrun(home, "work-queue", "delete", "bulk", "-p", "main")
    default, no_pool, duplicate, priority, unknown = skyrun_many(
        home,
        ["work-queue", "delete", "default", "-p", "main"],
        ["work-queue", "ls", "-p", "nowhere"],
        ["work-queue", "create", "urgent", "-p", "main"],
        ["work-queue", "create", "zero", "-p", "main", "--priority", "0"],
        ["work-queue", "pause", "bulk", "-p", "main"],
        expect=None,
    )
    assert_user_error(default, "default queue cannot be deleted")
    assert_user_error(no_pool, "'nowhere' not found")
    assert_user_error(duplicate, "already has a queue named 'urgent'")
    assert_user_error(priority, "--priority", "0")
    assert_user_error(unknown, "'bulk'", "not found")
    names = [q["name"] for q in skyrun_json(home, "work-queue", "ls", "-p", "main")]
    assert sorted(names) == ["default", "urgent"]


# -- deployments ------------------------------------------------------------------


@pytest.fixture
def deployed(tmp_path: Path) -> Path:
    """A SKYRUN_HOME with work pool `main` and deployments etl/nightly and etl/adhoc."""
    home = tmp_path / "home"
    skyrun(home, "work-pool", "create", "main", "--type", "process")
    output = run_script(write_project(tmp_path / "project"), DEPLOY_SCRIPT, cli_env(home))
    assert "skyrun deployment run etl/nightly" in output
    return home


def test_deployment_ls_and_inspect(deployed: Path, tmp_path: Path) -> None:
    listed, table, inspected, inspect_table = skyrun_many(
        deployed,
        ["deployment", "ls", "-o", "json"],
        ["deployment", "ls"],
        ["deployment", "inspect", "etl/nightly", "-o", "json"],
        ["deployment", "inspect", "etl/nightly"],
    )
    assert [(d["flow_name"], d["name"]) for d in json.loads(listed.stdout)] == [
        ("etl", "adhoc"),
        ("etl", "nightly"),
    ]
    assert "etl/nightly" in table.stdout and "0 9 * * *" in table.stdout
    nightly = json.loads(inspected.stdout)
    project = tmp_path / "project"
    assert nightly["entrypoint"] == "flows/etl.py:etl"
    assert nightly["path"] == str(project)
    assert nightly["pull_steps"] == [{"set_working_directory": {"directory": str(project)}}]
    assert nightly["parameters"] == {"n": 3}
    assert nightly["work_pool_name"] == "main" and nightly["work_queue_name"] == "default"
    assert nightly["job_variables"] == {"env": {"STAGE": "prod"}}
    [schedule] = nightly["schedules"]
    assert schedule["schedule"]["cron"] == "0 9 * * *"
    assert schedule["schedule"]["timezone"] == "Europe/Paris"
    schema = nightly["parameter_openapi_schema"]
    assert schema["properties"]["n"]["description"] == "how many rows to load"
    assert schema["properties"]["label"]["default"] == "rows"
    for fragment in ("flows/etl.py:etl", "Europe/Paris", "how many rows to load"):
        assert fragment in inspect_table.stdout
    assert '"rows" (flow default)' in inspect_table.stdout

    by_id = skyrun_json(deployed, "deployment", "inspect", nightly["id"])
    assert by_id["name"] == "nightly"
    bad_format, unknown, too_deep = skyrun_many(
        deployed,
        ["deployment", "inspect", "nightly"],
        ["deployment", "inspect", "etl/weekly"],
        ["deployment", "inspect", "etl/nightly/x"],
        expect=None,
    )
    assert_user_error(bad_format, "FLOW/DEPLOYMENT", "'nightly'")
    assert_user_error(unknown, "'etl/weekly' not found", "skyrun deployment ls")
    assert_user_error(too_deep, "FLOW/DEPLOYMENT", "'etl/nightly/x'")


def _runs_of(home: Path, deployment_id: str) -> list[dict[str, Any]]:
    runs = skyrun_json(home, "flow-run", "ls", "--flow", "etl", "--limit", "1000")
    return [run for run in runs if run["deployment_id"] == deployment_id]


def test_deployment_run(deployed: Path) -> None:
    nightly = skyrun_json(deployed, "deployment", "inspect", "etl/nightly")
    started = datetime.now(UTC)
    created = skyrun_json(
        deployed, "deployment", "run", "etl/nightly",
        "--params", '{"label": "books", "n": 5}', "--param", "n=7", "--param", "pause=0.5",
        "--job-variable", "working_dir=/tmp", "-jv", 'env={"A": "1"}',
        "--tag", "manual", "--start-in", "600",
    )  # fmt: skip
    # --param wins over --params, and both over the deployment's parameters.
    assert created["parameters"] == {"n": 7, "label": "books", "pause": 0.5}
    assert created["job_variables"] == {"working_dir": "/tmp", "env": {"A": "1"}}
    assert set(created["tags"]) == {"etl", "manual"}
    assert created["state"]["type"] == "SCHEDULED"
    expected = datetime.fromisoformat(created["expected_start_time"])
    assert started + timedelta(seconds=590) <= expected <= started + timedelta(seconds=700)

    bad_type, unknown_name, bad_params, not_object, bad_format, unknown_jv, bad_jv = skyrun_many(
        deployed,
        ["deployment", "run", "etl/nightly", "--param", "n=many"],
        ["deployment", "run", "etl/nightly", "--param", "rows=1"],
        ["deployment", "run", "etl/nightly", "--params", "{n: 1}"],
        ["deployment", "run", "etl/nightly", "--params", "[1]"],
        ["deployment", "run", "etl/nightly", "--param", "n"],
        ["deployment", "run", "etl/nightly", "-jv", "region=eu"],
        ["deployment", "run", "etl/nightly", "--job-variable", "stream_output=maybe"],
        expect=None,
    )
    assert_user_error(bad_type, "parameter 'n'", "'many' is not of type 'integer'")
    assert_user_error(unknown_name, "'rows' was unexpected")
    assert_user_error(bad_params, "--params is not valid JSON")
    assert_user_error(not_object, "--params must be a JSON object")
    assert_user_error(bad_format, "--param", "NAME=VALUE")
    assert_user_error(unknown_jv, "unknown job variable 'region'", "'working_dir'")
    assert_user_error(bad_jv, "job variable 'stream_output'", "not of type 'boolean'")
    # Only the first run was created: a refused run leaves nothing behind.
    assert [run["id"] for run in _runs_of(deployed, nightly["id"])] == [created["id"]]

    preview, preview_table, short_preview = skyrun_many(
        deployed,
        ["work-pool", "preview", "main", "-o", "json"],
        ["work-pool", "preview", "main", "--hours", "1"],
        ["work-pool", "preview", "main", "--hours", "0.05", "-o", "json"],
    )
    assert [run["id"] for run in json.loads(preview.stdout)] == [created["id"]]
    assert created["name"] in preview_table.stdout and "nightly" in preview_table.stdout
    assert json.loads(short_preview.stdout) == []  # due in 10 minutes, not in 3

    # Watching a run that does not end within the timeout gives up with exit 1.
    gave_up = skyrun(
        deployed, "deployment", "run", "etl/adhoc", "--param", "n=1", "--start-in", "3600",
        "--watch", "--watch-timeout", "1", expect=None,
    )  # fmt: skip
    assert_user_error(gave_up, "stopped watching", "after 1s", "SCHEDULED")
    assert "STATE    | SCHEDULED" in gave_up.stdout


def test_deployment_pause_resume_delete(deployed: Path) -> None:
    paused, _ = skyrun_many(
        deployed,
        ["deployment", "pause", "etl/nightly"],
        ["deployment", "pause", "etl/adhoc"],
    )
    assert "skyrun deployment resume etl/nightly" in paused.stdout
    listed = {d["name"]: d["paused"] for d in skyrun_json(deployed, "deployment", "ls")}
    assert listed == {"nightly": True, "adhoc": True}
    skyrun(deployed, "deployment", "resume", "etl/adhoc")
    listed = {d["name"]: d["paused"] for d in skyrun_json(deployed, "deployment", "ls")}
    assert listed == {"nightly": True, "adhoc": False}

    skyrun(deployed, "deployment", "delete", "etl/nightly")
    assert [d["name"] for d in skyrun_json(deployed, "deployment", "ls")] == ["adhoc"]
    gone, bad = skyrun_many(
        deployed,
        ["deployment", "run", "etl/nightly"],
        ["deployment", "delete", "etl"],
        expect=None,
    )
    assert_user_error(gone, "'etl/nightly' not found")
    assert_user_error(bad, "FLOW/DEPLOYMENT")


# -- watch, against a real server with the flow served ------------------------------


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[Path, dict[str, str]]]:
    """A real server, and `etl.serve("served")` against it; yields (home, CLI env)."""
    home = tmp_path / "home"
    home.mkdir()
    server = ServerProcess(tmp_path / "server-home")
    serve_log = (tmp_path / "serve.log").open("wb")
    serve: subprocess.Popen[bytes] | None = None
    env = cli_env(home, SKYRUN_API_URL=server.api_url)
    try:
        project = write_project(tmp_path / "project")
        (project / "serve.py").write_text(SERVE_SCRIPT)
        serve = subprocess.Popen(
            [sys.executable, "serve.py"],
            cwd=project,
            env=env,
            stdout=serve_log,
            stderr=subprocess.STDOUT,
        )
        wait_for(
            lambda: b"Press Ctrl-C" in (tmp_path / "serve.log").read_bytes(), 60, "flow.serve()"
        )
        yield home, env
    finally:
        if serve is not None:
            stop(serve)
        server.stop()
        serve_log.close()


def test_watch_completed_and_cancelled(served: tuple[Path, dict[str, str]]) -> None:
    home, env = served
    completed = skyrun(
        home, "deployment", "run", "etl/served", "--param", "label=crates", "--watch", env=env
    )
    lines = completed.stdout.splitlines()
    states = [line.split("| STATE    | ")[1] for line in lines if "| STATE    | " in line]
    assert states[0] == "SCHEDULED" and states[-1] == "COMPLETED", completed.stdout
    assert "RUNNING" in states
    assert any(line.endswith("| loading 1 crates") for line in lines), completed.stdout
    # Lines come in time order: the flow's log line between RUNNING and COMPLETED.
    running = next(i for i, line in enumerate(lines) if line.endswith("| RUNNING"))
    loading = next(i for i, line in enumerate(lines) if line.endswith("| loading 1 crates"))
    assert running < loading < lines.index(next(x for x in lines if x.endswith("| COMPLETED")))

    watcher = subprocess.Popen(
        [str(SKYRUN), "deployment", "run", "etl/served", "--param", "pause=120", "--watch"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert watcher.stdout is not None
        first = watcher.stdout.readline()
        match = re.search(r"\(([0-9a-f-]{36})\)", first)
        assert match, first
        seen = first
        while "| RUNNING" not in seen:
            line = watcher.stdout.readline()
            assert line, f"the watch ended before the run was RUNNING:\n{seen}"
            seen += line
        skyrun(home, "flow-run", "cancel", match.group(1), env=env)
        out, err = watcher.communicate(timeout=60)
    finally:
        if watcher.poll() is None:
            watcher.kill()
            watcher.wait()
    assert watcher.returncode == 1, (seen + out, err)
    assert "| CANCELLED" in out
    assert err.startswith("Error:") and "ended CANCELLED" in err and "Traceback" not in err
