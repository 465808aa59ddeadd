"""Turn both libraries' raw figures into comparison rows, a printed table and JSON.

Targets come from shared/reference/prefect-anchors.md and the brief: skyrun at
least 20x less per-task and per-flow-run overhead than Prefect, ``import skyrun``
under 0.2 s, a third of Prefect's memory, and every task run stored; and M2's:
from ``deployment run`` to the flow's first line with the process worker, skyrun
under 1 s median.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

SPEEDUP_TARGET = 20.0
IMPORT_TARGET_S = 0.2
MEMORY_FRACTION_TARGET = 1 / 3
DEPLOY_FIRST_LINE_TARGET_S = 1.0

Check = Callable[[float | None, float | None], bool | None]


@dataclass
class Row:
    """One line of the comparison table."""

    workload: str
    unit: str
    skyrun: float | None
    prefect: float | None
    ratio: float | None
    target: str
    met: bool | None
    skyrun_range: list[float] | None = None
    prefect_range: list[float] | None = None


def _dig(data: dict[str, Any] | None, *path: str) -> float | None:
    value: Any = data
    for key in path:
        if not isinstance(value, dict) or key not in value:
            return None
        value = value[key]
    return float(value) if isinstance(value, int | float) else None


def _spread(data: dict[str, Any] | None, *path: str) -> list[float] | None:
    """[min, max] over repeated processes, when the workload was repeated."""
    if not isinstance(data, dict) or not isinstance(data.get(path[0]), dict):
        return None
    spread = data[path[0]].get("spread", {}).get(".".join(path[1:]))
    return [float(spread[0]), float(spread[1])] if spread else None


def _faster(sky: float | None, pref: float | None) -> bool | None:
    if sky is None or pref is None:
        return None
    return sky > 0 and pref / sky >= SPEEDUP_TARGET


def _import_fast(sky: float | None, _pref: float | None) -> bool | None:
    return None if sky is None else sky < IMPORT_TARGET_S


def _lighter(sky: float | None, pref: float | None) -> bool | None:
    if sky is None or pref is None:
        return None
    return sky <= pref * MEMORY_FRACTION_TARGET


def _keeps_all(expected: int) -> Check:
    def check(sky: float | None, _pref: float | None) -> bool | None:
        return None if sky is None else int(sky) == expected

    return check


def _deploy_fast(sky: float | None, _pref: float | None) -> bool | None:
    return None if sky is None else sky < DEPLOY_FIRST_LINE_TARGET_S


def _faster_at_all(sky: float | None, pref: float | None) -> bool | None:
    return None if sky is None or pref is None else sky < pref


def _info(_sky: float | None, _pref: float | None) -> bool | None:
    return None


@dataclass(frozen=True)
class Spec:
    """How to read one row from both sides' raw results."""

    label: str
    unit: str
    path: tuple[str, ...]
    target: str
    check: Check
    has_ratio: bool = True


def _specs(n: int) -> list[Spec]:
    faster = f">= {SPEEDUP_TARGET:.0f}x"
    third = "skyrun <= 1/3"
    kept = f"skyrun = {n}"
    specs = [
        Spec(
            "import time (median, in-process)",
            "s",
            ("import", "import_s"),
            f"skyrun < {IMPORT_TARGET_S} s",
            _import_fast,
        ),
        Spec(
            "import: fresh process wall (median)", "s", ("import", "process_wall_s"), "info", _info
        ),
        Spec("import RSS", "MiB", ("import", "rss_mib"), third, _lighter),
    ]
    for key, how in (
        ("sequential", "sequential"),
        ("submitted", ".submit()"),
        ("mapped", ".map()"),
    ):
        specs += [
            Spec(
                f"{n} tasks, {how}: per task (flow call / {n})",
                "ms",
                ("overhead", key, "per_task_ms"),
                faster,
                _faster,
            ),
            Spec(
                "  same, per task inside the flow body",
                "ms",
                ("overhead", key, "per_task_in_flow_ms"),
                faster,
                _faster,
            ),
        ]
    specs += [
        Spec("empty flow run, per run", "ms", ("overhead", "per_flow_run_ms"), faster, _faster),
        Spec(
            "peak RSS, process running workloads 2-4",
            "MiB",
            ("overhead", "peak_rss_mib"),
            third,
            _lighter,
        ),
        Spec(
            f"stored task runs of last {n}-task flow, right after it returned",
            "runs",
            ("overhead", "sequential", "stored_right_after_flow"),
            kept,
            _keeps_all(n),
            False,
        ),
        Spec(
            f"stored task runs of last {n}-task flow, after process exit",
            "runs",
            ("overhead", "stored_after_exit", "for_flow_run"),
            kept,
            _keeps_all(n),
            False,
        ),
        Spec(
            "  of which in COMPLETED state",
            "runs",
            ("overhead", "stored_after_exit", "completed_for_flow_run"),
            kept,
            _keeps_all(n),
            False,
        ),
        Spec(
            "stored task runs, all flows of that process, after exit",
            "runs",
            ("overhead", "stored_after_exit", "total"),
            "skyrun = all",
            _info,
            False,
        ),
        Spec(
            f"cold process: {n}-task flow, whole flow call",
            "s",
            ("cold", "flow_call_s"),
            "info",
            _info,
        ),
        Spec(
            f"cold process: import + {n}-task flow, process wall",
            "s",
            ("cold", "process_wall_s"),
            "info",
            _info,
        ),
        Spec(
            "cold process: stored task runs after exit",
            "runs",
            ("cold", "stored_after_exit", "for_flow_run"),
            kept,
            _keeps_all(n),
            False,
        ),
        Spec(
            "  of which in COMPLETED state",
            "runs",
            ("cold", "stored_after_exit", "completed_for_flow_run"),
            kept,
            _keeps_all(n),
            False,
        ),
        Spec(
            "M2: deployment run -> flow's first line, process worker (median)",
            "s",
            ("deploy", "first_line_s"),
            f"skyrun < {DEPLOY_FIRST_LINE_TARGET_S:g} s",
            _deploy_fast,
        ),
        Spec(
            "  of which the `deployment run` command, until it exits",
            "s",
            ("deploy", "cli_s"),
            "info",
            _info,
        ),
        Spec(
            "  then from its exit to the first line (pick-up, process start)",
            "s",
            ("deploy", "after_cli_s"),
            "info",
            _info,
        ),
        Spec(
            "M2: server start until health answers (new database)",
            "s",
            ("deploy", "server_start_s"),
            "info",
            _info,
        ),
        Spec(
            "M4: `deploy --name` of a local-recipe project file (median)",
            "s",
            ("project", "deploy_s"),
            "skyrun faster",
            _faster_at_all,
        ),
        Spec(
            "  the first one (registers; the others update)",
            "s",
            ("project", "first_deploy_s"),
            "info",
            _info,
        ),
        *_cloud_run_specs(),
    ]
    return specs


def _more(sky: float | None, pref: float | None) -> bool | None:
    return None if sky is None or pref is None else sky > pref


def _cloud_run_specs() -> list[Spec]:
    """M5: runs through each library's Cloud Run worker on skyrun's emulator."""
    c = "cloud_run"
    return [
        Spec(
            "M5: Cloud Run worker on the emulator, runs per minute (a batch created at once)",
            "runs/min",
            (c, "runs_per_minute"),
            "skyrun more",
            _more,
            has_ratio=False,
        ),
        Spec(
            "  Cloud Run API calls per run (the batch)",
            "calls",
            (c, "calls_per_run"),
            "skyrun fewer",
            _faster_at_all,
        ),
        Spec(
            "  Cloud Run jobs left behind by the batch (never deleted)",
            "jobs",
            (c, "jobs_left_behind"),
            "info",
            _info,
            has_ratio=False,
        ),
        Spec(
            "  worker-side s per run beyond the container's own time, one run at a time",
            "s",
            (c, "solo", "overhead_s"),
            "skyrun less",
            _faster_at_all,
        ),
        Spec(
            "    = run created -> container started", "s", (c, "solo", "to_start_s"), "info", _info
        ),
        Spec(
            "    + container exited -> final state (< 0: reported before it exited)",
            "s",
            (c, "solo", "final_after_exit_s"),
            "info",
            _info,
            has_ratio=False,
        ),
        Spec(
            "  the container's own time (execution start -> completion), one at a time",
            "s",
            (c, "solo", "container_s"),
            "info",
            _info,
        ),
        Spec(
            "  worker-side s per run beyond the container, in the batch (pool-slot waits)",
            "s",
            (c, "overhead_s"),
            "info",
            _info,
        ),
    ]


def build_rows(sky: dict[str, Any] | None, pref: dict[str, Any] | None, n: int) -> list[Row]:
    """Comparison rows from each side's raw results (either side may be missing).

    Rows with no figure on either side (workloads not run) are left out.
    """
    rows: list[Row] = []
    for spec in _specs(n):
        s, p = _dig(sky, *spec.path), _dig(pref, *spec.path)
        if s is None and p is None:
            continue
        s_range, p_range = _spread(sky, *spec.path), _spread(pref, *spec.path)
        ratio = p / s if spec.has_ratio and s and p is not None else None
        # Stored task runs must be complete in every repeated process: check the worst.
        s_checked = s_range[0] if s_range and spec.unit == "runs" else s
        met = spec.check(s_checked, p)
        rows.append(Row(spec.label, spec.unit, s, p, ratio, spec.target, met, s_range, p_range))
    _fill_overall_expected(rows, sky)
    return rows


def _fill_overall_expected(rows: list[Row], sky: dict[str, Any] | None) -> None:
    expected = _dig(sky, "overhead", "expected_task_runs_total")
    for row in rows:
        if row.target == "skyrun = all":
            row.target = "info" if expected is None else f"skyrun = {int(expected)}"
            worst = row.skyrun_range[0] if row.skyrun_range else row.skyrun
            if expected is not None and worst is not None:
                row.met = int(worst) == int(expected)


def _number(value: float, unit: str) -> str:
    if unit in ("runs", "MiB"):
        return f"{value:.0f}"
    if unit == "s":
        return f"{value:.3f}"
    return f"{value:.4f}" if value < 0.1 else f"{value:.3f}"


def _fmt(value: float | None, unit: str, spread: list[float] | None = None) -> str:
    """``median unit [min-max]``; the range only when repeated runs differ."""
    if value is None:
        return "-"
    text = _number(value, unit) + ("" if unit == "runs" else f" {unit}")
    low, high = (_number(v, unit) for v in spread) if spread else ("", "")
    if low != high:
        text += f" [{low}-{high}]"
    return text


def _mark(met: bool | None) -> str:
    return {True: "met", False: "NOT MET", None: ""}[met]


def format_table(rows: list[Row]) -> str:
    """A plain-text table: workload | skyrun | prefect | ratio | target | met.

    Figures are medians over repeated processes, with [min-max] when they differ.
    """
    header = ("workload", "skyrun", "prefect", "prefect/skyrun", "target", "")
    body = [
        (
            row.workload,
            _fmt(row.skyrun, row.unit, row.skyrun_range),
            _fmt(row.prefect, row.unit, row.prefect_range),
            "-" if row.ratio is None else f"{row.ratio:.1f}x",
            row.target,
            _mark(row.met),
        )
        for row in rows
    ]
    widths = [max(len(line[i]) for line in [header, *body]) for i in range(len(header))]
    lines = [
        " | ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True))
        for line in [header, *body]
    ]
    lines.insert(1, "-+-".join("-" * w for w in widths))
    return "\n".join(line.rstrip() for line in lines)


def format_markdown(rows: list[Row]) -> str:
    """The same table in Markdown, for bench/README.md."""
    lines = [
        "| workload | skyrun | Prefect | Prefect / skyrun | target | |",
        "|---|---|---|---|---|---|",
    ]
    for row in rows:
        ratio = "-" if row.ratio is None else f"{row.ratio:.1f}x"
        cells = (
            "↳ " + row.workload.strip() if row.workload.startswith("  ") else row.workload,
            _fmt(row.skyrun, row.unit, row.skyrun_range),
            _fmt(row.prefect, row.unit, row.prefect_range),
            ratio,
            row.target,
            _mark(row.met),
        )
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def rows_as_json(rows: list[Row]) -> list[dict[str, Any]]:
    """Rows as plain dicts for results/latest.json."""
    return [asdict(row) for row in rows]
