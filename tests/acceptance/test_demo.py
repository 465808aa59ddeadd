"""Acceptance: the README's first command, `bash scripts/demo.sh`, does the main job.

It runs the Cloud Run journey on the embedded default (server on SQLite, the emulator
checking a generated key, a gcp-credentials block, a cloud-run pool and worker, the example
flow deployed and run as a Cloud Run job) and must end with the run COMPLETED and its
artifact printed. Run twice on one home: a second run must work too.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from processes import free_port

ROOT = Path(__file__).resolve().parents[2]


def test_the_demo_runs_the_weather_flow_as_a_cloud_run_job_twice(tmp_path: Path) -> None:
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("SKYRUN_")},
        "SKYRUN_HOME": str(tmp_path / "home"),
        "SKYRUN_DEMO_PORT": str(free_port()),
        "SKYRUN_DEMO_EMULATOR_PORT": str(free_port()),
    }
    for attempt in (1, 2):
        done = subprocess.run(
            ["bash", str(ROOT / "scripts" / "demo.sh")],
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
        output = done.stdout + done.stderr
        assert done.returncode == 0, f"attempt {attempt}:\n{output}"
        assert "Flow run" in done.stdout and "COMPLETED." in done.stdout, output
        assert "# Weather report" in done.stdout, output
        assert "no worker is polling" not in output
