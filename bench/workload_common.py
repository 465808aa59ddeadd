"""Workloads shared by the skyrun and Prefect halves of the benchmark (stdlib only).

The two libraries expose the same SDK shape (``flow``, ``task``, ``.submit()``,
``.map()``), so the workload bodies are written once here and driven by a thin,
library-specific module (``workloads_skyrun.py`` / ``workloads_prefect.py``).
Each of those modules runs as a script in a fresh interpreter (the project venv's
for skyrun, ``bench/.prefect-venv``'s for Prefect) and prints one JSON line,
prefixed with ``RESULT_PREFIX`` so that library log output on stdout is ignored.

This module is imported by the Prefect venv's interpreter too: it must not
import skyrun, Prefect or anything outside the standard library.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import resource
import sqlite3
import sys
import time
from collections.abc import Callable
from contextlib import closing
from dataclasses import dataclass
from typing import Any

RESULT_PREFIX = "BENCH_RESULT "


def emit(result: dict[str, Any]) -> None:
    """Print the one machine-readable line the parent process reads."""
    sys.stdout.write(RESULT_PREFIX + json.dumps(result) + "\n")
    sys.stdout.flush()


def current_rss_mib() -> float:
    """Resident set size of this process now, in MiB (Linux /proc)."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def peak_rss_mib() -> float:
    """Peak resident set size of this process so far (ru_maxrss is KiB on Linux)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def count_rows(db_path: str, table: str, flow_run_id: str | None = None) -> int | None:
    """Rows in ``table`` of the SQLite file ``db_path``, optionally of one flow run.

    Returns None if the file or table is missing. ``flow_run_id`` is matched
    with or without dashes against a ``flow_run_id`` column.
    """
    if not os.path.exists(db_path):
        return None
    try:
        with closing(sqlite3.connect(f"file:{db_path}?mode=ro", uri=True, timeout=30)) as db:
            if flow_run_id is None:
                (count,) = db.execute(f"SELECT COUNT(*) FROM {table}").fetchone()
            else:
                (count,) = db.execute(
                    f"SELECT COUNT(*) FROM {table} WHERE REPLACE(flow_run_id, '-', '') = ?",
                    (flow_run_id.replace("-", ""),),
                ).fetchone()
    except sqlite3.Error:
        return None
    return int(count)


@dataclass
class Library:
    """What a workload needs from one orchestrator.

    Attributes:
        flow: the ``flow`` decorator.
        task: the ``task`` decorator.
        flow_run_id: returns the current flow run's id (called inside a flow),
            or None when the library offers no way to ask.
        count_task_runs: how many task runs the library has stored so far (of one
            flow run when given its id), read straight from its database; None
            when not readable.
    """

    flow: Callable[..., Any]
    task: Callable[..., Any]
    flow_run_id: Callable[[], str | None]
    count_task_runs: Callable[[str | None], int | None]


@dataclass
class Sizes:
    """How big each workload is."""

    n_tasks: int
    n_flow_runs: int
    n_warmup_tasks: int = 10


def _timed(call: Callable[[], Any]) -> tuple[float, Any]:
    start = time.perf_counter()
    value = call()
    return time.perf_counter() - start, value


def build_flows(lib: Library, sizes: Sizes) -> dict[str, Callable[..., Any]]:
    """Define the trivial task and the flows every workload uses."""

    @lib.task
    def identity(x: int) -> int:
        return x

    @lib.flow
    def sequential(n: int) -> dict[str, Any]:
        start = time.perf_counter()
        for i in range(n):
            identity(i)
        return {"in_flow_s": time.perf_counter() - start, "flow_run_id": lib.flow_run_id()}

    @lib.flow
    def submitted(n: int) -> dict[str, Any]:
        start = time.perf_counter()
        futures = [identity.submit(i) for i in range(n)]
        values = [future.result() for future in futures]
        assert values == list(range(n)), "submit returned wrong values"
        return {"in_flow_s": time.perf_counter() - start, "flow_run_id": lib.flow_run_id()}

    @lib.flow
    def mapped(n: int) -> dict[str, Any]:
        start = time.perf_counter()
        futures = identity.map(list(range(n)))
        values = [future.result() for future in futures]
        assert values == list(range(n)), "map returned wrong values"
        return {"in_flow_s": time.perf_counter() - start, "flow_run_id": lib.flow_run_id()}

    @lib.flow
    def empty() -> None:
        return None

    return {"sequential": sequential, "submitted": submitted, "mapped": mapped, "empty": empty}


def run_overhead(lib: Library, sizes: Sizes) -> dict[str, Any]:
    """Workloads 2-5 in one process.

    Order: warm-up (a flow of ``n_warmup_tasks`` tasks and one empty flow), then
    ``n_flow_runs`` empty flow runs, then ``n_tasks`` via ``.submit()``, then via
    ``.map()``, and last ``n_tasks`` sequential calls, so that the sequential flow
    is the last flow of the process (the one whose stored task runs are counted).
    """
    flows = build_flows(lib, sizes)
    out: dict[str, Any] = {"n_tasks": sizes.n_tasks, "n_flow_runs": sizes.n_flow_runs}
    expected_task_runs = 0

    out["warmup_s"], _ = _timed(lambda: flows["sequential"](sizes.n_warmup_tasks))
    expected_task_runs += sizes.n_warmup_tasks
    out["warmup_empty_flow_s"], _ = _timed(flows["empty"])

    start = time.perf_counter()
    for _ in range(sizes.n_flow_runs):
        flows["empty"]()
    out["flow_runs_s"] = time.perf_counter() - start
    out["per_flow_run_ms"] = out["flow_runs_s"] * 1000 / sizes.n_flow_runs

    for name in ("submitted", "mapped", "sequential"):
        before = lib.count_task_runs(None)
        elapsed, body = _timed(functools.partial(flows[name], sizes.n_tasks))
        after = lib.count_task_runs(None)
        # Per flow run when the SDK tells us its id; else the growth of the table,
        # which can include late writes of earlier flows.
        stored = lib.count_task_runs(body["flow_run_id"]) if body["flow_run_id"] else None
        if stored is None and before is not None and after is not None:
            stored = after - before
        expected_task_runs += sizes.n_tasks
        out[name] = {
            "flow_call_s": elapsed,
            "in_flow_s": body["in_flow_s"],
            "per_task_ms": elapsed * 1000 / sizes.n_tasks,
            "per_task_in_flow_ms": body["in_flow_s"] * 1000 / sizes.n_tasks,
            "flow_run_id": body["flow_run_id"],
            "stored_right_after_flow": stored,
        }

    out["expected_task_runs_total"] = expected_task_runs
    out["stored_total_in_process"] = lib.count_task_runs(None)
    out["peak_rss_mib"] = peak_rss_mib()
    return out


def run_cold(lib: Library, sizes: Sizes, import_s: float) -> dict[str, Any]:
    """One ``n_tasks`` sequential flow as the first and only flow of a fresh process."""
    flows = build_flows(lib, sizes)
    elapsed, body = _timed(lambda: flows["sequential"](sizes.n_tasks))
    return {
        "n_tasks": sizes.n_tasks,
        "import_s": import_s,
        "flow_call_s": elapsed,
        "in_flow_s": body["in_flow_s"],
        "flow_run_id": body["flow_run_id"],
        "stored_right_after_flow": lib.count_task_runs(body["flow_run_id"]),
        "peak_rss_mib": peak_rss_mib(),
    }


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command line shared by both workload scripts."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("workload", choices=["overhead", "cold"])
    parser.add_argument("--n-tasks", type=int, default=1000)
    parser.add_argument("--n-flow-runs", type=int, default=100)
    return parser.parse_args(argv)
