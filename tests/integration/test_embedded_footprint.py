"""What a process that runs flows in embedded mode loads: the server, not its optional parts.

Every module here is memory the process keeps until it exits (the M1 target is
a third of Prefect's peak memory): Alembic is needed only to migrate, the
schedule and JSON-schema libraries and the work routes only for deployments and
work pools, the PostgreSQL dialect only on PostgreSQL, an HTTP client only
against a server (the embedded app is called in-process), pydantic-settings
never (settings are read by skyrun itself).
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from skyrun.settings import setting_names

SUBPROCESS_TIMEOUT = 120  # a guard against hangs, not a timing assertion

NOT_LOADED = (
    "alembic",
    "mako",
    "jsonschema",
    "croniter",
    "dateutil",
    "skyrun.schedules",
    "skyrun.workers",
    "sqlalchemy.dialects.postgresql",
    "rich",
    "pygments",
    "click",
    "httpx",
    "httpcore",
    "pydantic_settings",
    "tenacity",  # the backoff is loaded after a first failed request only
    "skyrun.retries",
    "skyrun.server.api.work_pools",
    "skyrun.server.api.deployments",
    # Blocks: their routes, types and cipher load when a block is first used.
    "skyrun.server.api.blocks",
    "skyrun.blocks",
    "cryptography",
    "skyrun.server.services.housekeeping",
    "skyrun.server.services.scheduler",
)

SCRIPT = textwrap.dedent(
    """
    import json, sys
    from skyrun import flow, task

    @task
    def double(x):
        return 2 * x

    @flow
    def numbers():
        return sum(double.map(range(20)).result()) + double(1)

    assert numbers() == 382
    numbers()  # the second run opens a database already at head
    print(json.dumps(sorted(sys.modules)))
    """
)


@pytest.mark.parametrize("runs", [1, 2], ids=["new-home", "existing-home"])
def test_embedded_flow_runs_leave_optional_modules_unloaded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, runs: int
) -> None:
    for name in setting_names():
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("SKYRUN_HOME", str(tmp_path))
    for _ in range(runs):
        result = subprocess.run(
            [sys.executable, "-c", SCRIPT],
            capture_output=True,
            text=True,
            timeout=SUBPROCESS_TIMEOUT,
            check=True,
        )
    loaded = json.loads(result.stdout.splitlines()[-1])
    assert "skyrun.server.app" in loaded  # the embedded API did run in-process
    unexpected = [
        name
        for name in loaded
        if any(name == prefix or name.startswith(prefix + ".") for prefix in NOT_LOADED)
    ]
    assert unexpected == []
