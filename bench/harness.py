"""Run one library's workloads in fresh subprocesses and collect their figures.

Each workload process gets its own fresh home folder (SKYRUN_HOME or
PREFECT_HOME) and prints one JSON line; after it exits, this module reads the
library's SQLite database to count the task runs it really kept.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from workload_common import RESULT_PREFIX

BENCH_DIR = Path(__file__).resolve().parent
PROJECT_PYTHON = BENCH_DIR.parent / ".venv" / "bin" / "python"


@dataclass(frozen=True)
class Side:
    """One orchestrator under test and how to run its workloads.

    Attributes:
        name: "skyrun" or "prefect".
        python: interpreter that has the library installed.
        script: the workload script (``workloads_<name>.py``).
        module: the module ``import`` is timed for.
        home_var: environment variable naming the library's home folder.
        db_file: database file name inside the home folder.
        task_run_table: table holding one row per task run.
        drop_env_prefix: environment variables with this prefix are removed
            (no API URL: embedded mode).
        extra_env: environment variables set for every workload process.
    """

    name: str
    python: Path
    script: Path
    module: str
    home_var: str
    db_file: str
    task_run_table: str
    drop_env_prefix: str
    extra_env: dict[str, str] = field(default_factory=dict)

    def env(self, home: Path) -> dict[str, str]:
        """Environment for one workload process with a fresh home."""
        env = {k: v for k, v in os.environ.items() if not k.startswith(self.drop_env_prefix)}
        env.pop("PYTHONPATH", None)
        env.update(self.extra_env)
        env[self.home_var] = str(home)
        return env


class WorkloadError(RuntimeError):
    """A workload process failed or printed no result."""


@dataclass
class ProcessResult:
    """What one workload process reported, plus what the parent observed."""

    result: dict[str, Any]
    process_wall_s: float
    home: Path


def run_process(side: Side, argv: list[str], timeout_s: float, keep_home: bool) -> ProcessResult:
    """Run ``side.python argv`` in a fresh home; return its JSON result line."""
    home = Path(tempfile.mkdtemp(prefix=f"bench-{side.name}-home-"))
    load_at_start = os.getloadavg()[0]
    start = time.perf_counter()
    try:
        proc = subprocess.run(
            [str(side.python), *argv],
            cwd=BENCH_DIR,
            env=side.env(home),
            capture_output=True,
            text=True,
            timeout=timeout_s,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise WorkloadError(
            f"{side.name} {' '.join(argv)}: timed out after {timeout_s:.0f} s"
        ) from exc
    wall = time.perf_counter() - start
    lines = [line for line in proc.stdout.splitlines() if line.startswith(RESULT_PREFIX)]
    if proc.returncode != 0 or not lines:
        tail = "\n".join((proc.stderr or proc.stdout).strip().splitlines()[-15:])
        if not keep_home:
            shutil.rmtree(home, ignore_errors=True)
        raise WorkloadError(
            f"{side.name} {' '.join(argv)}: exit code {proc.returncode}, no result line.\n{tail}"
        )
    result = json.loads(lines[-1][len(RESULT_PREFIX) :])
    # Other work on the machine inflates timings: keep the evidence with the figures.
    result["load_1min"] = [load_at_start, os.getloadavg()[0]]
    return ProcessResult(result, wall, home)


def stored_after_exit(side: Side, home: Path, flow_run_id: str | None) -> dict[str, Any]:
    """Count task runs the library's database kept, read after its process exited.

    ``completed_for_flow_run`` counts those whose state is COMPLETED: a stored row
    left in a running state is not a kept result.
    """
    db_path = home / side.db_file
    out: dict[str, Any] = {"db": side.db_file, "total": None, "for_flow_run": None}
    if not db_path.exists():
        out["error"] = f"{db_path.name} not found in {side.home_var}"
        return out
    table = side.task_run_table
    try:
        with closing(sqlite3.connect(f"file:{db_path}?mode=ro", uri=True, timeout=30)) as db:
            columns = {row[1] for row in db.execute(f"PRAGMA table_info({table})")}
            if not {"flow_run_id", "state_type"} <= columns:
                out["error"] = f"no table {table!r} with flow_run_id, state_type in {db_path.name}"
                return out
            out["total"] = db.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0]
            if flow_run_id is not None:
                out["for_flow_run"], out["completed_for_flow_run"] = db.execute(
                    f"SELECT COUNT(*), COALESCE(SUM(UPPER(state_type) = 'COMPLETED'), 0) "
                    f"FROM {table} WHERE REPLACE(flow_run_id, '-', '') = ?",
                    (flow_run_id.replace("-", ""),),
                ).fetchone()
    except sqlite3.Error as exc:
        out["error"] = f"reading {db_path.name}: {exc}"
    return out


def median_import(side: Side, module: str, reps: int, keep_home: bool) -> dict[str, Any]:
    """Median of ``reps`` fresh processes timing ``import module`` (one discarded warm-up)."""
    argv = ["workload_import.py", module]
    warmup = run_process(side, argv, 300, keep_home)  # compiles bytecode, warms the page cache
    runs = [run_process(side, argv, 300, keep_home) for _ in range(reps)]
    if not keep_home:
        for run in [warmup, *runs]:
            shutil.rmtree(run.home, ignore_errors=True)
    return {
        "module": module,
        "reps": reps,
        "import_s": statistics.median(r.result["import_s"] for r in runs),
        "import_s_all": [r.result["import_s"] for r in runs],
        "rss_mib": statistics.median(r.result["rss_mib"] for r in runs),
        "process_wall_s": statistics.median(r.process_wall_s for r in runs),
    }


def median_of_runs(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """One result from several processes' results: the median of every number.

    Non-numbers (ids, paths) come from the first run. The result's ``spread``
    maps each number's dotted path to [min, max]; ``runs`` keeps the raw results.
    """
    spread: dict[str, list[float]] = {}

    def merge(values: list[Any], path: str) -> Any:
        first = values[0]
        if isinstance(first, dict):
            return {
                key: merge(
                    [v.get(key) if isinstance(v, dict) else None for v in values],
                    f"{path}.{key}" if path else key,
                )
                for key in first
            }
        numbers = [v for v in values if isinstance(v, int | float) and not isinstance(v, bool)]
        if numbers and len(numbers) == len(values):
            spread[path] = [min(numbers), max(numbers)]
            return statistics.median(numbers)
        return first

    merged: dict[str, Any] = merge(runs, "")
    merged["repeats"] = len(runs)
    merged["spread"] = spread
    merged["runs"] = runs
    return merged


def run_side(
    side: Side,
    n_tasks: int,
    n_flow_runs: int,
    import_reps: int,
    repeats: int,
    keep_home: bool,
) -> dict[str, Any]:
    """All workloads of one library; a failing workload is recorded, not raised.

    The overhead and cold workloads run in ``repeats`` separate processes each
    and are reported as medians (see ``median_of_runs``).
    """
    sizes = ["--n-tasks", str(n_tasks), "--n-flow-runs", str(n_flow_runs)]
    results: dict[str, Any] = {"python": str(side.python), "errors": {}}
    steps: list[tuple[str, Any]] = [
        ("import", lambda: median_import(side, side.module, import_reps, keep_home)),
        ("bare_python", lambda: median_import(side, "-", import_reps, keep_home)),
        ("overhead", lambda: _repeat(side, "overhead", sizes, repeats, keep_home)),
        ("cold", lambda: _repeat(side, "cold", sizes, repeats, keep_home)),
    ]
    for name, step in steps:
        try:
            results[name] = step()
        except WorkloadError as exc:
            results["errors"][name] = str(exc)
            print(f"[bench] {side.name}: {name} FAILED: {exc}", file=sys.stderr, flush=True)
    return results


def _repeat(
    side: Side, workload: str, sizes: list[str], repeats: int, keep_home: bool
) -> dict[str, Any]:
    runs = []
    for i in range(repeats):
        print(f"[bench] {side.name}: {workload} {i + 1}/{repeats}", file=sys.stderr, flush=True)
        runs.append(_run_with_storage(side, workload, sizes, keep_home))
    return median_of_runs(runs)


def _run_with_storage(
    side: Side, workload: str, sizes: list[str], keep_home: bool
) -> dict[str, Any]:
    run = run_process(side, [side.script.name, workload, *sizes], 1800, keep_home)
    result = run.result
    result["process_wall_s"] = run.process_wall_s
    last_flow = result["sequential"] if workload == "overhead" else result
    result["stored_after_exit"] = stored_after_exit(side, run.home, last_flow.get("flow_run_id"))
    if keep_home:
        result["home"] = str(run.home)
    else:
        shutil.rmtree(run.home, ignore_errors=True)
    return result
