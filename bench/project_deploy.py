"""M4: `<cli> deploy --name weather` of a project folder's local-recipe project file.

For one library: start its server on a free port with a fresh home, create a
``process`` work pool, write the same small project (a flow file, and the
library's project file: skyrun's `local` recipe, or the equivalent prefect.yaml,
whose only pull step sets the project folder as the working directory), then
``n_runs`` times run ``<cli> deploy --name weather`` in that folder exactly as a
user would, each a fresh process, timing it until it exits. The first run
registers the deployment, the others update it (both CLIs upsert).

Servers are started and stopped by `deploy_latency.Stack` (every process in its
own session, killed at the end and on errors).
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from deploy_latency import POOL, Stack, _home
from harness import Side, WorkloadError

FLOW_SOURCE = """\
from {module} import flow


@flow
def weather(lat: float = 38.9, lon: float = -77.0) -> float:
    return lat + lon
"""

SKYRUN_YAML = """\
name: bench-project
build: []
push: []
pull:
- skyrun.deploy.steps.set_working_directory:
    directory: {project}
deployments:
- name: weather
  entrypoint: flows/weather.py:weather
  parameters: {{lat: 14.6, lon: 28.7}}
  work_pool:
    name: {pool}
"""

PREFECT_YAML = """\
name: bench-project
prefect-version: 3.8.8
build: null
push: null
pull:
- prefect.deployments.steps.set_working_directory:
    directory: {project}
deployments:
- name: weather
  entrypoint: flows/weather.py:weather
  parameters: {{lat: 14.6, lon: 28.7}}
  work_pool:
    name: {pool}
"""

PROJECT_FILES = {"skyrun": ("skyrun.yaml", SKYRUN_YAML), "prefect": ("prefect.yaml", PREFECT_YAML)}


def _deploy_once(stack: Stack, project: Path) -> float:
    # `--no-prompt` keeps Prefect from asking questions in a terminal; skyrun never asks.
    extra = ["--no-prompt"] if stack.side.name == "prefect" else []
    argv = [str(stack.cli), *extra, "deploy", "--name", "weather"]
    started = time.perf_counter()
    proc = subprocess.run(
        argv, cwd=project, env=stack.env(), capture_output=True, text=True, timeout=300, check=False
    )
    elapsed = time.perf_counter() - started
    if proc.returncode != 0:
        tail = "\n".join((proc.stderr + proc.stdout).strip().splitlines()[-10:])
        raise WorkloadError(f"{stack.side.name} deploy: exit {proc.returncode}\n{tail}")
    return elapsed


def measure_project_deploy(
    side: Side, n_runs: int, log_dir: Path, keep_home: bool
) -> dict[str, Any]:
    """Time `<cli> deploy --name weather` `n_runs` times; see the module docstring.

    Raises:
        WorkloadError: A command failed or the server did not start in time.
    """
    log_dir.mkdir(parents=True, exist_ok=True)
    with _home(side, keep_home) as home, ExitStack() as exits:
        stack = Stack(side, home, log_dir / f"{side.name}-project", exits)
        stack.log_dir.mkdir(exist_ok=True)
        project = home / "project"
        (project / "flows").mkdir(parents=True)
        (project / "flows" / "weather.py").write_text(FLOW_SOURCE.format(module=side.module))
        file_name, template = PROJECT_FILES[side.name]
        (project / file_name).write_text(template.format(project=project, pool=POOL))

        progress = f"[bench] {side.name}: project deploy"
        server_args = [arg.format(port=stack.port) for arg in stack.orchestrator.server_args]
        server_log = stack.start("server", [str(stack.cli), *server_args], stack.env(False))
        stack.wait_for(stack.healthy, 120, f"the {side.name} server ({server_log})")
        stack.cli_run("work-pool", "create", POOL, "--type", "process")
        times = []
        for index in range(n_runs):
            times.append(_deploy_once(stack, project))
            print(
                f"{progress} {index + 1}/{n_runs}: {times[-1]:.3f} s", file=sys.stderr, flush=True
            )
    return {
        "deploy_s": statistics.median(times),
        "deploy_s_all": times,
        "first_deploy_s": times[0],
    }
