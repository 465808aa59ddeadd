"""Benchmark skyrun against Prefect on the same workloads, side by side, in one run.

Usage (from the repository root, with the project venv)::

    .venv/bin/python bench/run.py [--only skyrun|prefect] [--quick] [--workloads tasks,deploy]

Prefect is installed on first use into ``bench/.prefect-venv``. Every workload
runs in a fresh subprocess with a fresh home folder; the table goes to stdout
and the figures to ``bench/results/latest.json``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from cloud_run_throughput import measure_cloud_run, start_emulator
from deploy_latency import measure_deploy
from harness import BENCH_DIR, PROJECT_PYTHON, Side, WorkloadError, run_side
from prefect_env import (
    PREFECT_BENCH_ENV,
    PREFECT_VERSION,
    ensure_prefect_gcp,
    ensure_prefect_venv,
    venv_python,
)
from project_deploy import measure_project_deploy
from report import build_rows, format_markdown, format_table, rows_as_json

RESULTS_DIR = BENCH_DIR / "results"
WORKLOAD_GROUPS = ("tasks", "deploy", "project", "cloud-run")


def workload_groups(text: str) -> list[str]:
    """``--workloads``: a comma-separated subset of WORKLOAD_GROUPS."""
    groups = [group.strip() for group in text.split(",") if group.strip()]
    unknown = [group for group in groups if group not in WORKLOAD_GROUPS]
    if unknown or not groups:
        raise argparse.ArgumentTypeError(
            f"{text!r}: give one or more of {', '.join(WORKLOAD_GROUPS)}, comma-separated"
        )
    return groups


def positive_int(text: str) -> int:
    """An argparse type: a whole number of at least 1."""
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: give a whole number of at least 1")
    return int(text)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="skyrun vs Prefect benchmark")
    parser.add_argument("--only", choices=["skyrun", "prefect"], help="run one side only")
    parser.add_argument(
        "--quick",
        action="store_true",
        help="fewer repetitions: 1 process per workload, 10 flow runs, 2 imports",
    )
    parser.add_argument(
        "--workloads",
        type=workload_groups,
        default=list(WORKLOAD_GROUPS),
        help="tasks (import, task and flow overhead, cold process), deploy "
        "(M2: deployment run -> flow's first line, process worker) and/or project "
        "(M4: `deploy --name` of a project file) and/or cloud-run (M5: runs through each "
        "Cloud Run worker on skyrun's emulator); default all",
    )
    parser.add_argument(
        "--cloud-run-runs", type=positive_int, help="cloud-run: runs per side (100; 10 quick)"
    )
    parser.add_argument(
        "--cloud-run-solo",
        type=int,
        help="cloud-run: runs one at a time before the batch, per side (5; 3 quick)",
    )
    parser.add_argument(
        "--cloud-run-concurrency",
        type=positive_int,
        default=4,
        help="cloud-run: the pool's concurrency limit, the same on both sides (4)",
    )
    parser.add_argument(
        "--project-deploys",
        type=positive_int,
        default=5,
        help="`deploy --name` commands timed per side (5)",
    )
    parser.add_argument(
        "--deploy-runs", type=positive_int, default=10, help="deployment runs timed per side (10)"
    )
    parser.add_argument("--n-tasks", type=int, default=1000, help="tasks per flow (1000)")
    parser.add_argument("--n-flow-runs", type=int, help="empty flow runs (100; 10 with --quick)")
    parser.add_argument(
        "--repeats", type=int, help="processes per task/flow workload, medians (3; 1 quick)"
    )
    parser.add_argument("--import-reps", type=int, help="fresh processes per import (5; 2 quick)")
    parser.add_argument(
        "--keep-homes", action="store_true", help="keep each workload's home folder and DB"
    )
    parser.add_argument("--output", type=Path, default=RESULTS_DIR / "latest.json")
    return parser.parse_args()


def skyrun_side() -> Side:
    return Side(
        name="skyrun",
        python=PROJECT_PYTHON,
        script=BENCH_DIR / "workloads_skyrun.py",
        module="skyrun",
        home_var="SKYRUN_HOME",
        db_file="skyrun.db",
        task_run_table="task_runs",
        drop_env_prefix="SKYRUN_",
    )


def prefect_side(python: Path) -> Side:
    return Side(
        name="prefect",
        python=python,
        script=BENCH_DIR / "workloads_prefect.py",
        module="prefect",
        home_var="PREFECT_HOME",
        db_file="prefect.db",
        task_run_table="task_run",
        drop_env_prefix="PREFECT_",
        extra_env=dict(PREFECT_BENCH_ENV),
    )


def skyrun_import_error(side: Side) -> str | None:
    """Why ``from skyrun import flow, task`` fails in the project venv, or None."""
    if not side.python.exists():
        return f"{side.python} does not exist (create the project venv first)"
    with tempfile.TemporaryDirectory(prefix="bench-skyrun-probe-") as home:
        proc = subprocess.run(
            [str(side.python), "-c", "from skyrun import flow, task"],
            env=side.env(Path(home)),
            capture_output=True,
            text=True,
            check=False,
        )
    if proc.returncode == 0:
        return None
    return "\n".join(proc.stderr.strip().splitlines()[-8:])


def library_version(side: Side, dist: str) -> str | None:
    proc = subprocess.run(
        [str(side.python), "-c", f"import importlib.metadata as m; print(m.version({dist!r}))"],
        capture_output=True,
        text=True,
        check=False,
    )
    return proc.stdout.strip() if proc.returncode == 0 else None


def machine_info() -> dict[str, Any]:
    cpu = ""
    try:
        with open("/proc/cpuinfo") as info:
            cpu = next((ln.split(":", 1)[1].strip() for ln in info if "model name" in ln), "")
    except OSError:
        pass
    return {
        "cores": os.cpu_count(),
        "cpu": cpu,
        "platform": platform.platform(),
        "python": platform.python_version(),
    }


def load_average() -> list[float]:
    """1, 5 and 15 minute load averages: other work on the machine skews timings."""
    return list(os.getloadavg())


def _loads_seen(results: dict[str, Any] | None) -> list[float]:
    """Every 1-minute load average recorded around the workload processes."""
    seen: list[float] = [0.0]
    for workload in ("overhead", "cold", "deploy", "project", "cloud_run"):
        figures = (results or {}).get(workload) or {}
        for run in figures.get("runs", []):
            seen.extend(run.get("load_1min", []))
        seen.extend(figures.get("load_1min", []))  # cloud_run: around the whole batch
    return seen


def git_commit() -> str | None:
    proc = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"],
        cwd=BENCH_DIR,
        capture_output=True,
        text=True,
        check=False,
    )
    return proc.stdout.strip() if proc.returncode == 0 else None


def run_workloads(side: Side, args: argparse.Namespace, sizes: dict[str, int]) -> dict[str, Any]:
    """The chosen workload groups for one side; a failing one is recorded, not raised."""
    if "tasks" in args.workloads:
        results = run_side(side, keep_home=args.keep_homes, **sizes)
    else:
        results = {"python": str(side.python), "errors": {}}
    if "deploy" in args.workloads:
        try:
            results["deploy"] = measure_deploy(
                side, args.deploy_runs, RESULTS_DIR / "deploy-logs", args.keep_homes
            )
        except (WorkloadError, subprocess.SubprocessError, OSError) as exc:
            # Its servers and workers are stopped by now; a timed-out command lands here too.
            results["errors"]["deploy"] = str(exc)
            print(f"[bench] {side.name}: deploy FAILED: {exc}", file=sys.stderr, flush=True)
    if "project" in args.workloads:
        try:
            results["project"] = measure_project_deploy(
                side, args.project_deploys, RESULTS_DIR / "deploy-logs", args.keep_homes
            )
        except (WorkloadError, subprocess.SubprocessError, OSError) as exc:
            results["errors"]["project"] = str(exc)
            print(f"[bench] {side.name}: project FAILED: {exc}", file=sys.stderr, flush=True)
    if "cloud-run" in args.workloads:
        emulator, key = args.cloud_run_emulator
        try:
            results["cloud_run"] = measure_cloud_run(
                side,
                args.cloud_run_runs,
                args.cloud_run_solo,
                args.cloud_run_concurrency,
                emulator,
                key,
                RESULTS_DIR / "deploy-logs",
                args.keep_homes,
            )
        except (WorkloadError, subprocess.SubprocessError, OSError) as exc:
            results["errors"]["cloud_run"] = str(exc)
            print(f"[bench] {side.name}: cloud-run FAILED: {exc}", file=sys.stderr, flush=True)
    return results


def run_skyrun(args: argparse.Namespace, sizes: dict[str, int]) -> dict[str, Any]:
    side = skyrun_side()
    error = skyrun_import_error(side)
    if error is not None:
        print(f"[bench] skyrun is not importable, skipping it:\n{error}", file=sys.stderr)
        return {"unavailable": error}
    results = run_workloads(side, args, sizes)
    results["version"] = library_version(side, "skyrun")
    return results


def run_prefect(args: argparse.Namespace, sizes: dict[str, int]) -> dict[str, Any]:
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    try:
        python = ensure_prefect_venv(log=RESULTS_DIR / "prefect-install.log")
    except (OSError, RuntimeError, subprocess.CalledProcessError) as exc:
        print(f"[bench] prefect could not be installed: {exc}", file=sys.stderr)
        return {"unavailable": str(exc)}
    side = prefect_side(python)
    if "cloud-run" in args.workloads:
        try:
            ensure_prefect_gcp(python, log=RESULTS_DIR / "prefect-install.log")
        except (OSError, subprocess.CalledProcessError) as exc:
            print(f"[bench] prefect-gcp could not be installed: {exc}", file=sys.stderr)
            args.workloads = [group for group in args.workloads if group != "cloud-run"]
    results = run_workloads(side, args, sizes)
    results["version"] = library_version(side, "prefect") or PREFECT_VERSION
    return results


def main() -> int:
    args = parse_args()
    # Turn `kill <pid>` into SystemExit so that the deploy workload stops its servers
    # and workers on the way out, as it does on Ctrl-C and errors.
    signal.signal(signal.SIGTERM, lambda _signum, _frame: sys.exit(143))
    sizes = {
        "n_tasks": args.n_tasks,
        "n_flow_runs": args.n_flow_runs or (10 if args.quick else 100),
        "import_reps": args.import_reps or (2 if args.quick else 5),
        "repeats": args.repeats or (1 if args.quick else 3),
    }
    args.cloud_run_runs = args.cloud_run_runs or (10 if args.quick else 100)
    if args.cloud_run_solo is None:
        args.cloud_run_solo = 3 if args.quick else 5
    started = dt.datetime.now(dt.UTC)
    loads = {"start": load_average()}
    with ExitStack() as exits:
        if "cloud-run" in args.workloads:
            # One emulator for both sides; its tasks find `prefect` on PATH when it is there.
            work_dir = Path(tempfile.mkdtemp(prefix="bench-cloud-run-emulator-"))
            prefect_python = venv_python() if args.only != "skyrun" else None
            emulator, key = start_emulator(work_dir, prefect_python)
            exits.callback(emulator.stop)
            if not args.keep_homes:
                exits.callback(shutil.rmtree, work_dir, ignore_errors=True)
            args.cloud_run_emulator = (emulator, key)
        sky = run_skyrun(args, sizes) if args.only in (None, "skyrun") else None
        loads["after_skyrun"] = load_average()
        pref = run_prefect(args, sizes) if args.only in (None, "prefect") else None
        loads["end"] = load_average()

    rows = build_rows(sky, pref, args.n_tasks)
    print()
    print(f"skyrun vs Prefect - {started:%Y-%m-%d %H:%M} UTC, {machine_info()['cores']} cores")
    print(
        f"workloads: {','.join(args.workloads)}; sizes: {sizes}, deploy runs "
        f"{args.deploy_runs}; load average (1 min) {loads['start'][0]:.2f} at start, "
        f"{loads['end'][0]:.2f} at end"
    )
    for name, side in (("skyrun", sky), ("prefect", pref)):
        bare = (side or {}).get("bare_python")
        if bare:
            print(
                f"bare {name} interpreter: {bare['process_wall_s']:.3f} s, {bare['rss_mib']:.0f} MiB"
            )
    for name, side in (("skyrun", sky), ("prefect", pref)):
        if side is None:
            continue
        if "unavailable" in side:
            print(f"{name}: NOT RUN - {side['unavailable'].splitlines()[-1]}")
        for workload, error in side.get("errors", {}).items():
            print(f"{name} {workload}: FAILED - {error.splitlines()[-1]}")
    busiest = max(max(_loads_seen(sky)), max(_loads_seen(pref)), *loads["end"][:1])
    cores = os.cpu_count() or 1
    if busiest > 0.75 * cores + 1:
        print(
            f"WARNING: the machine was busy with other work (1-minute load average up to "
            f"{busiest:.1f} on {cores} cores during the run): timings are inflated, the "
            "longer-running side (Prefect) most; rerun on a quiet machine."
        )
    print()
    print(format_table(rows))

    report = {
        "started": started.isoformat(),
        "machine": machine_info(),
        "load_average": loads,
        "git_commit": git_commit(),
        "args": {
            "only": args.only,
            "quick": args.quick,
            "workloads": args.workloads,
            "deploy_runs": args.deploy_runs,
            "project_deploys": args.project_deploys,
            "cloud_run_runs": args.cloud_run_runs,
            "cloud_run_solo": args.cloud_run_solo,
            "cloud_run_concurrency": args.cloud_run_concurrency,
            **sizes,
        },
        "rows": rows_as_json(rows),
        "skyrun": sky,
        "prefect": pref,
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(report, indent=2) + "\n")
    args.output.with_suffix(".md").write_text(format_markdown(rows) + "\n")
    print(f"\nresults written to {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
