"""The installed `skyrun` executable on hostile or mistaken input: escaped user text, one-line
errors for bad settings and databases, API keys from bootstrap to the last admin key."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from processes import TEST_ENCRYPTION_KEY, ServerProcess, clean_env
from skyrun.client.client import SkyrunClient
from skyrun.schemas.core import FlowRunCreate, FlowRunFilter
from skyrun.schemas.deployments import DeploymentCreate
from skyrun.schemas.states import StateCreate, StateType
from skyrun.schemas.work_pools import WorkPoolCreate
from skyrun.settings import Settings

SKYRUN = Path(sys.executable).parent / "skyrun"
HOSTILE = "\x1b[2J\x1b]0;pwned\x07"  # clear the screen, retitle the window
CLI_TIMEOUT = 60  # a guard against hangs, not a timing assertion


def skyrun(home: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(SKYRUN), *args],
        env=clean_env(home, NO_COLOR="1", COLUMNS="200", **env),
        capture_output=True,
        text=True,
        timeout=CLI_TIMEOUT,
    )


def one_line_error(result: subprocess.CompletedProcess[str], *words: str) -> str:
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.stderr
    for word in words:
        assert word in lines[0], (word, lines[0])
    return lines[0]


@pytest.fixture
def local(tmp_path: Path) -> Iterator[SkyrunClient]:
    """The embedded API of tmp_path/home, which the CLI there uses too."""
    client = SkyrunClient(Settings(home=tmp_path / "home"))
    try:
        yield client
    finally:
        client.close()


def test_user_text_reaches_the_terminal_escaped(tmp_path: Path, local: SkyrunClient) -> None:
    home = tmp_path / "home"
    flow = local.create_flow("f")
    run = local.create_flow_run(
        FlowRunCreate(
            flow_id=flow.id,
            state=StateCreate(type=StateType.RUNNING, name=f"Busy{HOSTILE}", message=HOSTILE),
        )
    )
    local.request(
        "POST",
        "logs",
        json=[
            {
                "flow_run_id": str(run.id),
                "name": "x",
                "level": 20,
                "message": f"line one{HOSTILE}\nline two",
                "timestamp": datetime.now(UTC).isoformat(),
            }
        ],
    )
    local.close()
    # A name stored before names were checked (names with control characters are now a 422).
    with sqlite3.connect(home / "skyrun.db") as db:
        db.execute("UPDATE flow_runs SET name = ?", (f"old{HOSTILE}",))

    for args in (["flow-run", "ls"], ["flow-run", "inspect", str(run.id)]):
        result = skyrun(home, *args)
        assert result.returncode == 0, result.stderr
        assert "\x1b" not in result.stdout and "\x07" not in result.stdout, args
        assert "\\x1b[2J\\x1b]0;pwned\\x07" in result.stdout, (args, result.stdout)
    logs = skyrun(home, "flow-run", "logs", str(run.id))
    assert logs.returncode == 0, logs.stderr
    assert "\x1b" not in logs.stdout
    assert "line one\\x1b[2J" in logs.stdout
    assert "\nline two" in logs.stdout  # a log line keeps its own newlines
    # -o json is for scripts: faithful, and JSON escapes control characters itself.
    assert "\\u001b[2J" in skyrun(home, "flow-run", "ls", "-o", "json").stdout


@pytest.mark.parametrize(
    ("env", "words"),
    [
        ({"SKYRUN_CLIENT_RETRIES": "-5"}, ("SKYRUN_CLIENT_RETRIES='-5'",)),
        ({"SKYRUN_FLUSH_INTERVAL": "-1"}, ("SKYRUN_FLUSH_INTERVAL='-1'",)),
        ({"SKYRUN_LOGGING_LEVEL": "NOPE"}, ("SKYRUN_LOGGING_LEVEL='NOPE'", "DEBUG")),
        ({"SKYRUN_API_URL": "localhost:4200"}, ("SKYRUN_API_URL", "http://")),
        ({"SKYRUN_DATABASE_URL": "nope://x"}, ("nope://x", "SKYRUN_DATABASE_URL")),
        (
            {"SKYRUN_DATABASE_URL": "postgresql+asyncpg://postgres:pw@127.0.0.1:1/x"},
            ("cannot open the database", "postgres:***@127.0.0.1:1/x"),
        ),
        ({"SKYRUN_HOME": "/proc/nope"}, ("/proc/nope", "SKYRUN_HOME")),
    ],
)
def test_bad_settings_and_databases_are_one_line(
    tmp_path: Path, env: dict[str, str], words: tuple[str, ...]
) -> None:
    line = one_line_error(skyrun(tmp_path, "flow-run", "ls", **env), *words)
    assert "pw@" not in line


def test_a_missing_postgres_database_is_one_line(tmp_path: Path, postgres_available: bool) -> None:
    url = "postgresql+asyncpg://postgres@127.0.0.1:5432/skyrun_no_such_database"
    one_line_error(skyrun(tmp_path, "flow-run", "ls", SKYRUN_DATABASE_URL=url), "does not exist")
    # A server on PostgreSQL needs its encryption key before it looks at the database.
    with_key = {"SKYRUN_DATABASE_URL": url, "SKYRUN_ENCRYPTION_KEY": TEST_ENCRYPTION_KEY}
    one_line_error(skyrun(tmp_path, "server", "start", **with_key), "does not exist")


def test_a_profile_that_cannot_be_written_is_one_line(tmp_path: Path) -> None:
    result = skyrun(tmp_path, "config", "set", "SKYRUN_CLIENT_RETRIES=2", SKYRUN_HOME="/proc/nope")
    one_line_error(result, "/proc/nope", "SKYRUN_HOME")
    one_line_error(skyrun(tmp_path, "config", "set", "SKYRUN_SERVER_PORT=99999"), "65535")


def test_server_start_checks_its_options(tmp_path: Path) -> None:
    port = skyrun(tmp_path, "server", "start", "--port", "99999")
    assert port.returncode == 2, port.stderr
    assert "Traceback" not in port.stderr and "'--port'" in port.stderr
    one_line_error(skyrun(tmp_path, "server", "start", "--log-level", "nope"), "--log-level")
    one_line_error(
        skyrun(tmp_path, "server", "start", SKYRUN_DATABASE_URL="sqlite+aiosqlite:////proc/x/db"),
        "/proc/x",
    )


def test_job_variables_and_parameters_are_read_by_their_schema(
    tmp_path: Path, local: SkyrunClient
) -> None:
    home = tmp_path / "home"
    local.create_work_pool(WorkPoolCreate(name="pool", type="process"))
    local.upsert_deployment(
        DeploymentCreate(
            flow_name="f",
            name="d",
            entrypoint="flows.py:f",
            work_pool_name="pool",
            parameter_openapi_schema={
                "type": "object",
                "properties": {"label": {"type": "string"}, "count": {"type": "integer"}},
            },
        )
    )
    local.close()
    result = skyrun(
        home,
        "deployment", "run", "f/d", "-o", "json",
        "--job-variable", "working_dir=123",
        "--param", "label=123",
        "--param", "count=123",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    reader = SkyrunClient(Settings(home=home))
    try:
        [created] = reader.filter_flow_runs(FlowRunFilter()).items
    finally:
        reader.close()
    assert created.job_variables == {"working_dir": "123"}
    assert created.parameters == {"label": "123", "count": 123}

    update = skyrun(home, "work-pool", "update", "pool", "--set", "working_dir=123")
    assert update.returncode == 0, update.stderr
    pool = SkyrunClient(Settings(home=home))
    try:
        template = pool.read_work_pool("pool").base_job_template
    finally:
        pool.close()
    assert template["variables"]["properties"]["working_dir"]["default"] == "123"


def test_api_keys_from_the_first_admin_to_the_last(tmp_path: Path) -> None:
    home = tmp_path / "home"
    # The first admin key is made against the server's database, with no server and no
    # key (even with auth switched on for this home).
    bootstrap = skyrun(
        home, "api-key", "create", "root", "--scope", "admin", SKYRUN_SERVER_AUTH_ENABLED="true"
    )
    assert bootstrap.returncode == 0, bootstrap.stderr
    root_key = next(line.strip() for line in bootstrap.stdout.splitlines() if "sky_" in line)
    server = ServerProcess(home, SKYRUN_SERVER_AUTH_ENABLED="true")
    try:

        def remote(key: str, *args: str) -> subprocess.CompletedProcess[str]:
            return skyrun(home, *args, SKYRUN_API_URL=server.api_url, SKYRUN_API_KEY=key)

        made = remote(root_key, "api-key", "create", "reader", "--scope", "read")
        assert made.returncode == 0, made.stderr
        reader_key = next(line.strip() for line in made.stdout.splitlines() if "sky_" in line)
        listing = remote(root_key, "api-key", "ls")
        assert listing.returncode == 0, listing.stderr
        assert "admin" in listing.stdout and "read" in listing.stdout

        assert remote(reader_key, "flow-run", "ls").returncode == 0
        one_line_error(remote(reader_key, "api-key", "ls"), "needs 'admin'", "HTTP 403")
        one_line_error(remote(reader_key, "variable", "set", "v", "1"), "needs 'write'")

        one_line_error(remote(root_key, "api-key", "revoke", "root"), "last admin key", "--force")
        forced = remote(root_key, "api-key", "revoke", "root", "--force")
        assert forced.returncode == 0, forced.stderr
        one_line_error(remote(root_key, "flow-run", "ls"), "invalid or revoked", "HTTP 401")
    finally:
        server.stop()
