"""M5: runs of a trivial flow through each library's Cloud Run worker on skyrun's emulator.

One `skyrun cloud-run emulator` (process mode, checking a generated service-account
key) serves both sides, each in its own Google project. For one library: a server on
a free port with a fresh home, a gcp-credentials block from the key, a Cloud Run pool
(skyrun `cloud-run`, Prefect `cloud-run-v2` from prefect-gcp) with the region, the
image, the emulator as endpoint and a concurrency limit, a deployment of a flow that
returns 1, and one worker. Then ``n_runs`` runs are created at once through the API and
waited for until every one is final. The emulator counts the Cloud Run API calls
(`GET /_emulator/calls?project=P`) and keeps every execution's start and completion
times after its job is deleted (`GET /_emulator/executions`); the servers give each
run's creation time and final state's timestamp.

Prefect's worker builds its Cloud Run client with Google's endpoint fixed in code:
`cloud_run_prefect.py worker` points it at the emulator inside the worker's own process.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections import Counter
from contextlib import ExitStack
from datetime import datetime
from pathlib import Path
from typing import Any

from deploy_latency import TERMINAL_STATES, Stack, _home
from harness import BENCH_DIR, PROJECT_PYTHON, Side, WorkloadError

sys.path.insert(0, str(BENCH_DIR.parent / "tests"))
from cloud_run_emulator import Emulator, service_account_key

POOL = "bench-cloud-run"
REGION = "us-central1"
IMAGE = "us-docker.pkg.dev/bench/flows/trivial:1"  # never pulled: process mode
PROJECTS = {"skyrun": "bench-skyrun", "prefect": "bench-prefect"}
FLOW_SOURCE = "from {module} import flow\n\n\n@flow\ndef trivial() -> int:\n    return 1\n"
SKYRUN_YAML = """\
name: bench-cloud-run
pull:
- skyrun.deploy.steps.set_working_directory:
    directory: {project}
deployments:
- name: cloud-run
  entrypoint: cloud_run_flow.py:trivial
  work_pool:
    name: {pool}
"""
RUN_ROUTES = {"skyrun": "deployments/{id}/runs", "prefect": "deployments/{id}/create_flow_run"}


def start_emulator(work_dir: Path, prefect_python: Path | None) -> tuple[Emulator, dict[str, Any]]:
    """The shared emulator, and the service-account key it checks (written to work_dir)."""
    from processes import free_port

    work_dir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    key_file = work_dir / "key.json"
    key = service_account_key(key_file, f"http://127.0.0.1:{port}/token")
    # Tasks run `skyrun flow-run execute` / `prefect flow-run execute` from PATH, with
    # HOME from here (Prefect keeps its profile there).
    bins = [str(PROJECT_PYTHON.parent)] + ([str(prefect_python.parent)] if prefect_python else [])
    home = work_dir / "task-home"
    home.mkdir(exist_ok=True)
    env = {"PATH": os.pathsep.join([*bins, os.environ.get("PATH", "")]), "HOME": str(home)}
    emulator = Emulator(work_dir, "--service-account-key", str(key_file), port=port, env=env)
    return emulator, {"file": str(key_file), **key}


UNAVAILABLE_RETRIES: Counter[str] = Counter()  # the harness's own 503s, by server


def _post(url: str, body: dict[str, Any]) -> Any:
    """POST JSON; a 503 (Prefect's SQLite server answers it when its database is busy,
    see README) is tried again after a pause, up to 5 times, and counted."""
    request = urllib.request.Request(
        url, json.dumps(body).encode(), {"Content-Type": "application/json"}, method="POST"
    )
    for attempt in range(6):
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                return json.load(response)
        except urllib.error.HTTPError as exc:
            if exc.code != 503 or attempt == 5:
                raise WorkloadError(f"POST {url}: HTTP {exc.code}: {exc.read()[:500]!r}")
            UNAVAILABLE_RETRIES[url.split("/api/")[0]] += 1
            time.sleep(1.0 + attempt)


def _runs(stack: Stack, deployment_id: str) -> list[dict[str, Any]]:
    url = f"{stack.api_url}/flow_runs/filter"
    if stack.side.name == "skyrun":
        items: list[dict[str, Any]] = _post(url, {"deployment_id": deployment_id, "limit": 1000})[
            "items"
        ]
        return items
    runs: list[dict[str, Any]] = _post(
        url, {"deployments": {"id": {"any_": [deployment_id]}}, "limit": 200}
    )
    return runs


def _setup(stack: Stack, emulator: Emulator, key: dict[str, Any], concurrency: int) -> str:
    """Block, pool and deployment; the deployment's id."""
    project_dir = stack.home / "project"
    project_dir.mkdir()
    (project_dir / "cloud_run_flow.py").write_text(FLOW_SOURCE.format(module=stack.side.module))
    project = PROJECTS[stack.side.name]
    if stack.side.name == "prefect":
        argv = [str(stack.side.python), str(BENCH_DIR / "cloud_run_prefect.py"), "setup"]
        argv += ["--key", key["file"], "--project", project, "--region", REGION, "--image", IMAGE]
        argv += ["--pool", POOL, "--project-dir", str(project_dir)]
        argv += ["--concurrency", str(concurrency)]
        done = subprocess.run(
            argv, env=stack.env(), capture_output=True, text=True, timeout=300, check=False
        )
        if done.returncode != 0:
            raise WorkloadError(f"prefect setup failed:\n{done.stderr[-3000:]}")
        return done.stdout.strip().splitlines()[-1]
    stack.cli_run(
        "block",
        "create",
        "gcp-credentials",
        "bench-creds",
        "--field",
        f"project={project}",
        "--field",
        f"service_account_info=@{key['file']}",
    )
    stack.cli_run(
        "work-pool", "create", POOL, "--type", "cloud-run", "--concurrency-limit", str(concurrency)
    )
    settings = {
        "region": REGION,
        "credentials": "gcp-credentials/bench-creds",
        "api_endpoint": emulator.url,
        "image": IMAGE,
    }
    stack.cli_run(
        "work-pool",
        "update",
        POOL,
        *(arg for k, v in settings.items() for arg in ("--set", f"{k}={v}")),
    )
    (project_dir / "skyrun.yaml").write_text(SKYRUN_YAML.format(project=project_dir, pool=POOL))
    done = subprocess.run(
        [str(stack.cli), "deploy", "--name", "cloud-run"],
        cwd=project_dir,
        env=stack.env(),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if done.returncode != 0:
        raise WorkloadError(f"skyrun deploy failed:\n{(done.stderr + done.stdout)[-3000:]}")
    with urllib.request.urlopen(f"{stack.api_url}/deployments/name/trivial/cloud-run") as answer:
        return str(json.load(answer)["id"])


def _start_worker(stack: Stack, emulator: Emulator) -> None:
    if stack.side.name == "skyrun":
        argv = [str(stack.cli), "worker", "start", "-p", POOL, "-t", "cloud-run"]
    else:
        helper = str(BENCH_DIR / "cloud_run_prefect.py")
        argv = [str(stack.side.python), helper, "worker", emulator.url, "worker", "start"]
        argv += ["-p", POOL]
    log = stack.start("worker", argv, stack.env())
    ready = stack.orchestrator.worker_ready
    stack.wait_for(lambda: ready in log.read_text(errors="replace"), 120, f"the worker ({log})")


def _time(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def _summary(values: list[float]) -> dict[str, float]:
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


def figures(
    runs: list[dict[str, Any]], executions: list[dict[str, Any]], started: float, calls: int
) -> dict[str, Any]:
    """Runs per minute, calls per run and per-run seconds from the raw records."""
    by_job = {e["name"].split("/executions/")[0].rsplit("/", 1)[-1]: e for e in executions}
    overhead, to_start, container, after = [], [], [], []
    for run in runs:
        # skyrun records the execution's name, Prefect the job's id.
        infrastructure = str(run.get("infrastructure_id") or run.get("infrastructure_pid"))
        execution = by_job.get(infrastructure.split("/executions/")[0].rsplit("/", 1)[-1])
        if execution is None or not execution.get("startTime"):
            continue
        created, final = _time(run["created"]), _time(run["state"]["timestamp"])
        start, end = _time(execution["startTime"]), _time(execution["completionTime"])
        container.append(end - start)
        to_start.append(start - created)
        after.append(final - end)
        overhead.append((final - created) - (end - start))
    finals = [_time(run["state"]["timestamp"]) for run in runs]
    elapsed = max(finals) - started
    result: dict[str, Any] = {
        "n_runs": len(runs),
        "states": {s: sum(r["state"]["type"] == s for r in runs) for s in TERMINAL_STATES},
        "matched_executions": len(overhead),
        "elapsed_s": elapsed,
        "runs_per_minute": len(runs) / elapsed * 60,
        "calls_per_run": calls / len(runs),
    }
    for name, values in (
        ("overhead_s", overhead),
        ("to_start_s", to_start),
        ("container_s", container),
        ("final_after_exit_s", after),
    ):
        if values:
            summary = _summary(values)
            result[name] = summary["median"]
            result.setdefault("spread", {})[name] = [summary["min"], summary["max"]]
            result[f"mean_{name}"] = statistics.fmean(values)
    return result


def _batch(
    stack: Stack, emulator: Emulator, deployment_id: str, n_runs: int, loads: list[float]
) -> tuple[list[dict[str, Any]], dict[str, int], float]:
    """Create `n_runs` runs at once and wait for them all, and for their jobs' deletes.

    Returns:
        The runs as the server lists them, the API calls they cost by method, and the
        wall clock before the first create.
    """
    project = PROJECTS[stack.side.name]
    before = emulator.calls(project)
    route = RUN_ROUTES[stack.side.name].format(id=deployment_id)
    loads.append(os.getloadavg()[0])
    started = time.time()
    ids = {str(_post(f"{stack.api_url}/{route}", {})["id"]) for _ in range(n_runs)}

    def all_final() -> list[dict[str, Any]] | None:
        time.sleep(0.5)  # two listings a second: light on both servers
        runs = [run for run in _runs(stack, deployment_id) if run["id"] in ids]
        done = [r for r in runs if (r.get("state") or {}).get("type") in TERMINAL_STATES]
        return runs if len(done) == n_runs else None

    runs: list[dict[str, Any]] = stack.wait_for(
        all_final, 120 + 60 * n_runs, f"{n_runs} {stack.side.name} runs to end"
    )
    # Jobs are deleted after their runs end: wait (without calling the API, which
    # would count) until every job's delete arrived and the calls stopped. A worker
    # that never deletes some jobs is a finding, not a failure: after the wait, the
    # jobs still there are counted as left behind.
    deletes = before.get("jobs.delete", 0) + n_runs
    try:
        stack.wait_for(lambda: _settled(emulator, project, deletes), 300, "the jobs' deletes")
    except WorkloadError as exc:
        if not str(exc).startswith("timed out"):
            raise
    loads.append(os.getloadavg()[0])
    return runs, _delta(emulator.calls(project), before), started


def measure_cloud_run(
    side: Side,
    n_runs: int,
    n_solo: int,
    concurrency: int,
    emulator: Emulator,
    key: dict[str, Any],
    log_dir: Path,
    keep_home: bool,
) -> dict[str, Any]:
    """Run the cloud-run workload for one library; see the module docstring.

    First `n_solo` runs one at a time (each waited for, and its job's delete), for the
    per-run figures without waiting for a pool slot; then `n_runs` created at once.

    Raises:
        WorkloadError: A step failed or the runs did not all end in time.
    """
    project = PROJECTS[side.name]
    progress = f"[bench] {side.name}: cloud-run"
    loads: list[float] = []
    with _home(side, keep_home) as home, ExitStack() as exits:
        stack = Stack(side, home, log_dir / f"{side.name}-cloud-run", exits)
        stack.log_dir.mkdir(parents=True, exist_ok=True)
        server_args = [arg.format(port=stack.port) for arg in stack.orchestrator.server_args]
        stack.start("server", [str(stack.cli), *server_args], stack.env(False))
        stack.wait_for(stack.healthy, 120, f"the {side.name} server")
        deployment_id = _setup(stack, emulator, key, concurrency)
        _start_worker(stack, emulator)
        solo_runs: list[dict[str, Any]] = []
        solo_calls: Counter[str] = Counter()
        for index in range(n_solo):
            runs, calls, _ = _batch(stack, emulator, deployment_id, 1, loads)
            solo_runs += runs
            solo_calls.update(calls)
            print(f"{progress}: run {index + 1}/{n_solo} alone", file=sys.stderr, flush=True)
        runs, calls_by_method, started = _batch(stack, emulator, deployment_id, n_runs, loads)
    executions = [e for e in emulator.finished() if e["name"].startswith(f"projects/{project}/")]
    result = figures(runs, executions, started, sum(calls_by_method.values()))
    result.update(concurrency=concurrency, calls_by_method=calls_by_method, load_1min=loads)
    # Jobs the batch created that its worker never deleted (300 s after the last run ended).
    result["jobs_left_behind"] = calls_by_method.get("jobs.create", 0) - calls_by_method.get(
        "jobs.delete", 0
    )
    result["harness_503_retries"] = UNAVAILABLE_RETRIES[stack.api_url.split("/api")[0]]
    if solo_runs:
        solo = figures(solo_runs, executions, 0.0, sum(solo_calls.values()))
        solo.pop("runs_per_minute"), solo.pop("elapsed_s")
        result["solo"] = {**solo, "calls_by_method": dict(solo_calls)}
        for name, spread in solo.get("spread", {}).items():  # where report.py finds them
            result.setdefault("spread", {})[f"solo.{name}"] = spread
    print(
        f"{progress}: {result['runs_per_minute']:.1f} runs/min, "
        f"{result['calls_per_run']:.1f} calls/run",
        file=sys.stderr,
        flush=True,
    )
    return result


def _delta(after: dict[str, int], before: dict[str, int]) -> dict[str, int]:
    return {m: n - before.get(m, 0) for m, n in after.items() if n > before.get(m, 0)}


def _settled(emulator: Emulator, project: str, deletes: int) -> bool:
    """Whether `deletes` jobs.delete calls arrived and no call came in the last 2 s."""
    calls = emulator.calls(project)
    if calls.get("jobs.delete", 0) < deletes:
        return False
    time.sleep(2.0)
    return emulator.calls(project) == calls
