"""A schedule the review used to freeze the server, against a real `skyrun server start`.

`RRULE:FREQ=SECONDLY;COUNT=2000000000` from 1970 made the scheduler walk every
second since 1970 on the event loop: /api/health stopped answering, and again
after every restart. Now it is scheduled from now; and a rule that matches no
date, saved before schedules were checked, is logged once and skipped while
the other deployments are still scheduled and the server keeps answering.
"""

from __future__ import annotations

import json
import sqlite3
from datetime import timedelta
from pathlib import Path

import httpx

from processes import ServerProcess, wait_for
from skyrun.client.client import SkyrunClient
from skyrun.schemas.core import FlowRunFilter
from skyrun.schemas.deployments import DeploymentCreate
from skyrun.schemas.states import StateType, utcnow
from skyrun.schemas.work_pools import WorkPoolCreate
from skyrun.settings import Settings

FROM_1970 = "DTSTART:19700101T000000Z\nRRULE:FREQ=SECONDLY;COUNT=2000000000"
MATCHES_NO_DATE = "FREQ=DAILY;BYMONTH=2;BYMONTHDAY=30"
ENV = {"SKYRUN_SCHEDULER_INTERVAL": "0.5", "SKYRUN_SCHEDULER_HORIZON_RUNS": "5"}


def client_for(server: ServerProcess) -> SkyrunClient:
    settings = Settings(home=server.home).model_copy(update={"api_url": server.api_url})
    return SkyrunClient(settings)


def scheduled_times(client: SkyrunClient, deployment_id: object) -> list[object]:
    page = client.filter_flow_runs(
        FlowRunFilter(deployment_id=deployment_id, state_type=[StateType.SCHEDULED], limit=100)
    )
    return [run.expected_start_time for run in page.items]


def health(server: ServerProcess) -> int:
    return httpx.get(f"{server.api_url}/health", timeout=10).status_code


def test_a_schedule_from_1970_is_scheduled_from_now_and_a_bad_one_stops_nothing(
    tmp_path: Path,
) -> None:
    home = tmp_path / "home"
    server = ServerProcess(home, **ENV)
    try:
        client = client_for(server)
        client.create_work_pool(WorkPoolCreate(name="pool", type="process"))
        created = [
            client.upsert_deployment(
                DeploymentCreate.model_validate(
                    {
                        "flow_name": "etl",
                        "name": name,
                        "entrypoint": "f.py:etl",
                        "work_pool_name": "pool",
                        "schedules": [{"schedule": {"rrule": FROM_1970}}],
                    }
                )
            )
            for name in ("every-second", "to-break")
        ]
        started = utcnow()
        times = wait_for(lambda: scheduled_times(client, created[0].id), 30, "scheduled runs")
        assert all(
            started - timedelta(seconds=5) < t < started + timedelta(minutes=5) for t in times
        )
        assert health(server) == 200
    finally:
        server.stop()

    # A rule that matches no date, as if saved before schedules were checked; and
    # no runs yet for the other deployment, so the restarted server must make them.
    with sqlite3.connect(home / "skyrun.db") as db:
        db.execute(
            "UPDATE deployment_schedules SET schedule = ? WHERE deployment_id = ?",
            (json.dumps({"kind": "rrule", "rrule": MATCHES_NO_DATE, "timezone": "UTC"}),
             created[1].id.hex),
        )  # fmt: skip
        db.execute("DELETE FROM flow_runs")
    server = ServerProcess(home, port=server.port, **ENV)
    try:
        client = client_for(server)
        wait_for(lambda: scheduled_times(client, created[0].id), 30, "runs after the restart")
        for _ in range(5):  # several scheduler passes, each answering at once
            assert health(server) == 200
        wait_for(lambda: "cannot be computed" in server.log_path.read_text(), 30, "the warning")
        assert scheduled_times(client, created[1].id) == []
    finally:
        server.stop()
    log = server.log_path.read_text()
    assert log.count("cannot be computed") == 1, log
    assert "to-break" in log
