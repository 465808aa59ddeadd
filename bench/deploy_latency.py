"""M2: from ``deployment run`` to the flow's first line, with the process worker.

For one library: start its server on a free port with a fresh home, create a
``process`` work pool, register a deployment of a flow whose first line appends
its own ``time.time()`` to a file, and start one worker with its default
settings. Once the worker polls, ``n_runs`` times: note the wall clock, run
``<cli> deployment run first-line/m2`` as a user would, wait for the flow's first
line, then for the run to end and its process to exit before the next one.

Every process is started in its own session; at the end (also on errors) each
one's process group and every descendant the worker or server started are
killed. This module runs in the project venv (it drives each library's CLI).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import psutil
from harness import Side, WorkloadError, median_of_runs

POOL = "bench-m2"
DEPLOYMENT = "first-line/m2"  # both libraries name the flow after the function, "_" -> "-"
# Prefect's worker asks for due runs every 10 s (PREFECT_WORKER_QUERY_SECONDS).
# Trigger i waits i/n of this after the previous run ended, so the triggers land at
# evenly spread points of that poll cycle instead of all at the same one.
PHASE_SPREAD_S = 10.0
TERMINAL_STATES = {"COMPLETED", "FAILED", "CRASHED", "CANCELLED"}
UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")

FLOW_SOURCE = """\
import os
import time

from {module} import flow


@flow
def first_line() -> None:
    with open({marker!r}, "a") as out: out.write(f"{{time.time()!r}} {{os.getpid()}}\\n")
"""


@dataclass(frozen=True)
class Orchestrator:
    """What differs between the libraries for M2 (their CLIs are otherwise alike).

    Attributes:
        api_url_var: environment variable pointing a client or worker at the server.
        server_args: ``<cli>`` arguments that start the server; ``{port}`` is filled in.
        worker_ready: text the worker prints once it is polling the pool.
        deploy_source: Python run in the project folder that registers the deployment.
    """

    api_url_var: str
    server_args: tuple[str, ...]
    worker_ready: str
    deploy_source: str


ORCHESTRATORS = {
    "skyrun": Orchestrator(
        api_url_var="SKYRUN_API_URL",
        server_args=("server", "start", "--port", "{port}"),
        worker_ready="polling work pool",
        deploy_source=(
            f"from m2_flow import first_line\n\nfirst_line.deploy('m2', work_pool_name={POOL!r})\n"
        ),
    ),
    "prefect": Orchestrator(
        api_url_var="PREFECT_API_URL",
        server_args=("server", "start", "--host", "127.0.0.1", "--port", "{port}"),
        worker_ready="started!",
        # A local folder as the source: the worker's pull step sets it as working directory.
        deploy_source=(
            "from pathlib import Path\n\nfrom prefect import flow\n\n"
            "flow.from_source(\n"
            "    source=str(Path(__file__).parent), entrypoint='m2_flow.py:first_line'\n"
            f").deploy('m2', work_pool_name={POOL!r})\n"
        ),
    ),
}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _get_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=5) as response:
        return json.load(response)


def _stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM the process's group and descendants, SIGKILL whatever is left after 15 s."""
    try:
        tree = [psutil.Process(process.pid), *psutil.Process(process.pid).children(True)]
    except psutil.NoSuchProcess:
        tree = []
    for sig in (signal.SIGTERM, signal.SIGKILL):
        groups = {process.pid}
        for proc in tree:
            try:
                groups.add(os.getpgid(proc.pid))
            except ProcessLookupError:
                pass
        for group in groups - {os.getpgrp()}:
            try:
                os.killpg(group, sig)
            except ProcessLookupError:
                pass
        for proc in tree:
            try:
                proc.send_signal(sig)
            except psutil.NoSuchProcess:
                pass
        _, alive = psutil.wait_procs(tree, timeout=15)
        if not alive:
            break
    process.wait(15)


class Stack:
    """The processes of one M2 measurement, all stopped when it ends."""

    def __init__(self, side: Side, home: Path, log_dir: Path, exits: ExitStack) -> None:
        self.side = side
        self.orchestrator = ORCHESTRATORS[side.name]
        self.home = home
        self.log_dir = log_dir
        self.exits = exits
        self.cli = side.python.parent / side.name
        self.port = _free_port()
        self.api_url = f"http://127.0.0.1:{self.port}/api"
        self.processes: list[tuple[str, subprocess.Popen[bytes], Path]] = []

    def env(self, with_api_url: bool = True) -> dict[str, str]:
        """A fresh-home environment (see ``Side.env``), pointed at this server or not."""
        env = self.side.env(self.home)
        if with_api_url:
            env[self.orchestrator.api_url_var] = self.api_url
        return env

    def start(self, name: str, argv: list[str], env: dict[str, str]) -> Path:
        """Start a long-running process in its own session; return its log file."""
        log_path = self.log_dir / f"{name}.log"
        log: IO[bytes] = self.exits.enter_context(log_path.open("wb"))
        process = subprocess.Popen(
            argv,
            cwd=self.home,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.exits.callback(_stop, process)
        self.processes.append((name, process, log_path))
        return log_path

    def wait_for(self, check: Callable[[], Any], timeout_s: float, what: str) -> Any:
        """Poll ``check`` until it returns a true value; fail early if a process died."""
        deadline = time.monotonic() + timeout_s
        while True:
            value = check()
            if value:
                return value
            for name, process, log_path in self.processes:
                if process.poll() is not None:
                    tail = "\n".join(log_path.read_text(errors="replace").splitlines()[-10:])
                    raise WorkloadError(
                        f"{self.side.name} {name} exited with code {process.returncode} "
                        f"while waiting for {what}:\n{tail}"
                    )
            if time.monotonic() > deadline:
                raise WorkloadError(f"timed out after {timeout_s:g} s waiting for {what}")
            time.sleep(0.05)

    def cli_run(self, *args: str) -> str:
        """Run ``<cli> args`` against the server; its stdout."""
        proc = subprocess.run(
            [str(self.cli), *args],
            cwd=self.home,
            env=self.env(),
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        if proc.returncode != 0:
            tail = "\n".join((proc.stderr or proc.stdout).strip().splitlines()[-10:])
            raise WorkloadError(
                f"{self.side.name} {' '.join(args)}: exit {proc.returncode}\n{tail}"
            )
        return proc.stdout

    def healthy(self) -> bool:
        """Whether the server's ``/api/health`` answers 200."""
        try:
            with urllib.request.urlopen(f"{self.api_url}/health", timeout=2) as response:
                return bool(response.status == 200)
        except (OSError, urllib.error.URLError):
            return False

    def state_of(self, flow_run_id: str) -> str | None:
        """The flow run's state type (both APIs: ``GET /flow_runs/{id}`` -> state.type)."""
        try:
            run = _get_json(f"{self.api_url}/flow_runs/{flow_run_id}")
        except (OSError, urllib.error.URLError, ValueError):
            return None
        state = run.get("state") or {}
        return state.get("type")


def _marker_lines(marker: Path) -> list[str]:
    return marker.read_text().splitlines() if marker.exists() else []


def _log_has(log: Path, text: str) -> bool:
    return text in log.read_text(errors="replace")


def _pid_gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def _trigger(stack: Stack, marker: Path, index: int) -> dict[str, Any]:
    """One ``deployment run``; seconds from before the CLI to the flow's first line."""
    load_before = os.getloadavg()[0]
    t0 = time.time()
    stdout = stack.cli_run("deployment", "run", DEPLOYMENT)
    cli_s = time.time() - t0
    found = UUID.search(stdout)
    if found is None:
        raise WorkloadError(f"{stack.side.name} deployment run printed no flow run id:\n{stdout}")
    flow_run_id = found.group(0)

    def reached_first_line() -> list[str] | None:
        lines = _marker_lines(marker)
        return lines if len(lines) > index else None

    def ended() -> str | None:
        state = stack.state_of(flow_run_id)
        return state if state in TERMINAL_STATES else None

    lines: list[str] = stack.wait_for(
        reached_first_line,
        120,
        f"{stack.side.name} flow run {flow_run_id} to reach its first line",
    )
    first_line_time, pid = lines[index].split()
    state = stack.wait_for(
        ended,
        120,
        f"{stack.side.name} flow run {flow_run_id} to end",
    )
    stack.wait_for(
        lambda: _pid_gone(int(pid)), 60, f"the process of flow run {flow_run_id} to exit"
    )
    first_line_s = float(first_line_time) - t0
    return {
        "first_line_s": first_line_s,
        "cli_s": cli_s,
        # Worker pick-up, process start and flow loading, after the command exited.
        "after_cli_s": first_line_s - cli_s,
        "end_s": time.time() - t0,
        "state": state,
        "flow_run_id": flow_run_id,
        "load_1min": [load_before, os.getloadavg()[0]],
    }


@contextmanager
def _home(side: Side, keep_home: bool) -> Iterator[Path]:
    home = Path(tempfile.mkdtemp(prefix=f"bench-{side.name}-m2-"))
    try:
        yield home
    finally:
        if not keep_home:
            shutil.rmtree(home, ignore_errors=True)


def measure_deploy(side: Side, n_runs: int, log_dir: Path, keep_home: bool) -> dict[str, Any]:
    """Run M2 for one library; see the module docstring.

    Raises:
        WorkloadError: A command failed or something did not happen in time
            (every process is stopped first).
    """
    orchestrator = ORCHESTRATORS[side.name]
    log_dir.mkdir(parents=True, exist_ok=True)
    with _home(side, keep_home) as home, ExitStack() as exits:
        stack = Stack(side, home, log_dir / side.name, exits)
        stack.log_dir.mkdir(exist_ok=True)
        project = home / "project"
        project.mkdir()
        marker = home / "first-lines.txt"
        (project / "m2_flow.py").write_text(
            FLOW_SOURCE.format(module=side.module, marker=str(marker))
        )
        (project / "deploy_m2.py").write_text(orchestrator.deploy_source)

        progress = f"[bench] {side.name}: deployment run -> first line"
        print(f"{progress}: starting the server", file=sys.stderr, flush=True)
        server_args = [arg.format(port=stack.port) for arg in orchestrator.server_args]
        started = time.perf_counter()
        server_log = stack.start("server", [str(stack.cli), *server_args], stack.env(False))
        stack.wait_for(stack.healthy, 120, f"the {side.name} server ({server_log})")
        server_start_s = time.perf_counter() - started

        stack.cli_run("work-pool", "create", POOL, "--type", "process")
        deploy = subprocess.run(
            [str(side.python), "deploy_m2.py"],
            cwd=project,
            env=stack.env(),
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        if deploy.returncode != 0:
            tail = "\n".join(deploy.stderr.strip().splitlines()[-10:])
            raise WorkloadError(f"{side.name}: registering the deployment failed:\n{tail}")
        worker_log = stack.start(
            "worker", [str(stack.cli), "worker", "start", "-p", POOL], stack.env()
        )
        stack.wait_for(
            lambda: _log_has(worker_log, orchestrator.worker_ready),
            120,
            f"the {side.name} worker to poll ({worker_log})",
        )

        runs = []
        for index in range(n_runs):
            time.sleep(PHASE_SPREAD_S * index / n_runs)
            runs.append(_trigger(stack, marker, index))
            print(
                f"{progress} {index + 1}/{n_runs}: {runs[-1]['first_line_s']:.3f} s",
                file=sys.stderr,
                flush=True,
            )
    result = median_of_runs(runs)
    latencies = [run["first_line_s"] for run in runs]
    result.update(
        server_start_s=server_start_s,
        first_line_s_all=latencies,
        mean_first_line_s=statistics.fmean(latencies),
        states=[run["state"] for run in runs],
        phase_spread_s=PHASE_SPREAD_S,
    )
    return result
