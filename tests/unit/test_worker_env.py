"""What a flow run's process gets in its environment from the worker."""

from __future__ import annotations

import uuid
from pathlib import Path

from skyrun.settings import Settings
from skyrun.workers.runs import job_environment

RUN_ID = uuid.UUID("12345678-1234-5678-1234-567812345678")


def test_remote_api_settings_reach_the_run(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path, api_url="http://api:4200/api", api_key="k1")
    env = job_environment({"env": {"A": "1", "DROP": None}}, settings, RUN_ID)
    assert env == {
        "A": "1",
        "SKYRUN_API_URL": "http://api:4200/api",
        "SKYRUN_API_KEY": "k1",
        "SKYRUN_FLOW_RUN_ID": str(RUN_ID),
    }


def test_embedded_mode_shares_the_home_and_database(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path, api_url=None, api_key=None, database_url=None)
    env = job_environment({}, settings, RUN_ID)
    assert env == {"SKYRUN_HOME": str(tmp_path), "SKYRUN_FLOW_RUN_ID": str(RUN_ID)}


def test_the_job_env_may_override_the_api_but_not_the_run_id(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path, api_url="http://internal/api", api_key=None)
    job = {"env": {"SKYRUN_API_URL": "https://public/api", "SKYRUN_FLOW_RUN_ID": "other"}}
    env = job_environment(job, settings, RUN_ID)
    assert env["SKYRUN_API_URL"] == "https://public/api"
    assert env["SKYRUN_FLOW_RUN_ID"] == str(RUN_ID)
