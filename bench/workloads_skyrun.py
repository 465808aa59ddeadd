"""skyrun half of the benchmark: run one workload and print one JSON line.

Runs with the project venv's interpreter, SKYRUN_HOME set to a fresh folder and
no SKYRUN_API_URL (skyrun's embedded SQLite mode, database at
``$SKYRUN_HOME/skyrun.db``).
"""

from __future__ import annotations

import os
import time

_import_start = time.perf_counter()
from skyrun import flow, task  # noqa: E402

IMPORT_S = time.perf_counter() - _import_start

from workload_common import (  # noqa: E402
    Library,
    Sizes,
    count_rows,
    emit,
    parse_args,
    run_cold,
    run_overhead,
)


def current_flow_run_id() -> str | None:
    """Id of the flow run this call is inside (skyrun has no public runtime module yet)."""
    try:
        # Internal module (no public runtime API yet): tolerate it moving.
        from skyrun.sdk.context import current_flow_run
    except ImportError:
        return None
    context = current_flow_run()
    return None if context is None else str(context.flow_run_id)


def stored_task_runs(flow_run_id: str | None) -> int | None:
    """Task runs in skyrun's SQLite database right now."""
    return count_rows(
        os.path.join(os.environ["SKYRUN_HOME"], "skyrun.db"), "task_runs", flow_run_id
    )


def main() -> None:
    args = parse_args()
    lib = Library(
        flow=flow, task=task, flow_run_id=current_flow_run_id, count_task_runs=stored_task_runs
    )
    sizes = Sizes(n_tasks=args.n_tasks, n_flow_runs=args.n_flow_runs)
    if args.workload == "overhead":
        result = run_overhead(lib, sizes)
    else:
        result = run_cold(lib, sizes, IMPORT_S)
    result["library_import_s"] = IMPORT_S
    emit(result)


if __name__ == "__main__":
    main()
