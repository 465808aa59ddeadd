"""The package's layers: the server never imports the workers (they share `skyrun.jobs`)."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

from processes import clean_env


def test_the_server_imports_no_worker_module(tmp_path: Path) -> None:
    """Every server module, and the work-pool, deployment and claim routes at work,
    run without loading any of skyrun.workers."""
    script = textwrap.dedent(
        """
        import importlib, pkgutil, sys
        import skyrun.server
        for info in pkgutil.walk_packages(skyrun.server.__path__, "skyrun.server."):
            if ".migrations" not in info.name:
                importlib.import_module(info.name)
        from skyrun.client.client import SkyrunClient
        from skyrun.schemas.deployments import DeploymentCreate
        from skyrun.schemas.work_pools import WorkPoolCreate, WorkPoolUpdate
        from skyrun.settings import Settings

        client = SkyrunClient(Settings())
        pool = client.create_work_pool(WorkPoolCreate(name="p", type="process"))
        client.update_work_pool("p", WorkPoolUpdate(base_job_template=pool.base_job_template))
        client.upsert_deployment(
            DeploymentCreate(
                flow_name="f", name="d", entrypoint="f.py:f", work_pool_name="p",
                job_variables={"stream_output": False},
            )
        )
        client.claim_runs("p", "w")
        client.close()
        print(sorted(m for m in sys.modules if m.startswith("skyrun.workers")))
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        env=clean_env(tmp_path),
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]", result.stdout
