"""The SDK in embedded mode: flows and tasks recorded in a real SQLite database under SKYRUN_HOME."""

from __future__ import annotations

import asyncio
import json
import os
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest

import skyrun
from skyrun import flow, get_run_logger, task, unmapped
from skyrun.artifacts import (
    create_link_artifact,
    create_markdown_artifact,
    create_table_artifact,
)
from skyrun.client.client import SkyrunClient, get_client
from skyrun.schemas.core import FlowRun, FlowRunFilter, TaskRun
from skyrun.sdk.context import current_flow_run, current_task_run
from skyrun.sdk.parameters import ParameterError
from skyrun.sdk.timeouts import RunTimeout
from skyrun.settings import Settings

pytestmark = pytest.mark.usefixtures("sdk_home")

SUBPROCESS_TIMEOUT = 120  # a guard against hangs, not a timing assertion


# -- helpers ----------------------------------------------------------------------


def client() -> SkyrunClient:
    """The SDK's own (embedded) client for this test's SKYRUN_HOME."""
    return get_client()


def runs_of(flow_name: str) -> list[FlowRun]:
    page = client().filter_flow_runs(FlowRunFilter(flow_name=flow_name, sort="created_asc"))
    assert page.count == len(page.items)
    return page.items


def only_run(flow_name: str) -> FlowRun:
    runs = runs_of(flow_name)
    assert len(runs) == 1, [r.name for r in runs]
    return runs[0]


def task_runs_of(run: FlowRun) -> list[TaskRun]:
    items: list[TaskRun] = []
    while True:
        page = client().list_task_runs(run.id, limit=1000, offset=len(items))
        items += page.items
        if len(items) >= page.count:
            return items


def state_of(run: FlowRun | TaskRun) -> tuple[str, str]:
    assert run.state is not None
    return run.state.type.value, run.state.name


def history_of(task_run: TaskRun) -> list[tuple[str, str]]:
    return [(s.type.value, s.name) for s in task_run.state_history]


def count_rows(home: Path, query: str) -> Any:
    """Read the embedded database file directly, beside the API."""
    with sqlite3.connect(home / "skyrun.db") as connection:
        return connection.execute(query).fetchone()


# -- flows and tasks --------------------------------------------------------------


@task
def extract(n: int) -> list[int]:
    return list(range(n))


@task(name="transform", tags=["cpu"])
def double_all(values: list[int]) -> list[int]:
    return [2 * v for v in values]


@task
def load(values: list[int]) -> int:
    return sum(values)


@flow(tags=["etl"])
def sequential_pipeline(n: int = 3) -> int:
    return load(double_all(extract(n)))


def test_a_flow_with_sequential_tasks() -> None:
    assert sequential_pipeline(4) == 12

    run = only_run("sequential-pipeline")
    assert state_of(run) == ("COMPLETED", "Completed")
    assert run.parameters == {"n": 4}
    assert run.tags == ["etl"]
    assert run.run_count == 1
    assert run.start_time is not None
    assert run.end_time is not None
    assert run.parent_flow_run_id is None

    task_runs = task_runs_of(run)
    assert [t.name for t in task_runs] == ["extract-0", "transform-0", "load-0"]
    assert all(state_of(t) == ("COMPLETED", "Completed") for t in task_runs)
    assert all(t.flow_run_id == run.id for t in task_runs)
    assert task_runs[1].tags == ["cpu"]
    assert task_runs[0].task_key.endswith("test_sdk.extract")
    assert history_of(task_runs[0]) == [
        ("PENDING", "Pending"),
        ("RUNNING", "Running"),
        ("COMPLETED", "Completed"),
    ]
    assert [t.run_count for t in task_runs] == [1, 1, 1]
    states = [(s.type.value, s.name) for s in client().read_flow_run_states(run.id)]
    assert states == [("RUNNING", "Running"), ("COMPLETED", "Completed")]


def test_each_call_is_a_new_run_and_tasks_outside_flows_are_plain_calls() -> None:
    assert extract(2) == [0, 1]
    assert sequential_pipeline(1) == 0
    assert sequential_pipeline() == 6
    runs = runs_of("sequential-pipeline")
    assert [r.parameters for r in runs] == [{"n": 1}, {"n": 3}]
    assert len({r.name for r in runs}) == 2
    assert client().list_task_runs().count == 6


@task
def add(x: int, y: int) -> int:
    return x + y


@flow
def submitting_flow() -> tuple[int, list[int], list[int]]:
    first = add.submit(1, 2)
    chained = add.submit(first, 10)
    mapped = add.map([1, 2, 3], unmapped(100))
    keyword_mapped = add.map(x=[5, 6], y=[50, 60])
    return chained.result(), mapped.result(), keyword_mapped.result()


def test_submit_and_map() -> None:
    assert submitting_flow() == (13, [101, 102, 103], [55, 66])

    run = only_run("submitting-flow")
    assert state_of(run) == ("COMPLETED", "Completed")
    task_runs = task_runs_of(run)
    assert len(task_runs) == 7
    assert sorted(t.name for t in task_runs) == [f"add-{i}" for i in range(7)]
    assert all(state_of(t) == ("COMPLETED", "Completed") for t in task_runs)


def test_map_refuses_iterables_of_different_lengths() -> None:
    @flow
    def mismatched() -> None:
        add.map([1, 2], [1, 2, 3])

    with pytest.raises(ValueError, match=r"different lengths: \[2, 3\]"):
        mismatched()
    assert state_of(only_run("mismatched"))[0] == "FAILED"


def test_submit_outside_a_flow_explains_itself() -> None:
    with pytest.raises(RuntimeError, match=r"add.submit\(\) needs a flow run"):
        add.submit(1, 2)


@task
async def fetch(x: int) -> int:
    await asyncio.sleep(0.01)
    return 2 * x


@flow
async def async_pipeline(n: int) -> tuple[int, list[int], list[int]]:
    direct = await fetch(1)
    gathered = await asyncio.gather(*(fetch(i) for i in range(n)))
    submitted = [future.result() for future in [fetch.submit(10), fetch.submit(20)]]
    return direct, list(gathered), submitted


def test_an_async_flow_with_async_tasks() -> None:
    assert asyncio.run(async_pipeline(3)) == (2, [0, 2, 4], [20, 40])

    run = only_run("async-pipeline")
    assert state_of(run) == ("COMPLETED", "Completed")
    assert run.parameters == {"n": 3}
    task_runs = task_runs_of(run)
    assert sorted(t.name for t in task_runs) == [f"fetch-{i}" for i in range(6)]
    assert all(state_of(t) == ("COMPLETED", "Completed") for t in task_runs)


# -- subflows ---------------------------------------------------------------------


@flow
def child_flow(x: int) -> int:
    return add(x, 1)


@task
def run_child_in_a_task(x: int) -> int:
    return child_flow(x)


@flow
def parent_flow() -> int:
    return child_flow(1) + run_child_in_a_task(10)


def test_subflows_are_linked_to_their_parent() -> None:
    assert parent_flow() == 13

    parent = only_run("parent-flow")
    children = runs_of("child-flow")
    assert len(children) == 2
    assert all(state_of(c) == ("COMPLETED", "Completed") for c in children)
    assert all(c.parent_flow_run_id == parent.id for c in children)

    parent_task_runs = task_runs_of(parent)
    assert [t.name for t in parent_task_runs] == ["run_child_in_a_task-0"]
    assert children[0].parent_task_run_id is None
    assert children[1].parent_task_run_id == parent_task_runs[0].id
    for child in children:
        assert [t.name for t in task_runs_of(child)] == ["add-0"]
    children_page = client().filter_flow_runs(FlowRunFilter(parent_flow_run_id=parent.id))
    assert children_page.count == 2


# -- retries ----------------------------------------------------------------------


def test_task_retries_are_recorded() -> None:
    attempts: list[int] = []

    @task(retries=2)
    def flaky() -> str:
        attempts.append(1)
        if len(attempts) < 3:
            raise ConnectionError(f"attempt {len(attempts)} failed")
        return "ok"

    @task(retries=1)
    def hopeless() -> None:
        raise ValueError("never works")

    @flow
    def retrying_tasks() -> str:
        result = flaky()
        try:
            hopeless()
        except ValueError:
            pass
        return result

    assert retrying_tasks() == "ok"
    assert len(attempts) == 3

    run = only_run("retrying-tasks")
    assert state_of(run) == ("COMPLETED", "Completed")
    by_name = {t.name: t for t in task_runs_of(run)}
    flaky_run = by_name["flaky-0"]
    assert state_of(flaky_run) == ("COMPLETED", "Completed")
    assert flaky_run.run_count == 3
    assert history_of(flaky_run) == [
        ("PENDING", "Pending"),
        ("RUNNING", "Running"),
        ("SCHEDULED", "AwaitingRetry"),
        ("RUNNING", "Retrying"),
        ("SCHEDULED", "AwaitingRetry"),
        ("RUNNING", "Retrying"),
        ("COMPLETED", "Completed"),
    ]
    assert flaky_run.state_history[2].message == "ConnectionError: attempt 1 failed"

    hopeless_run = by_name["hopeless-0"]
    assert state_of(hopeless_run) == ("FAILED", "Failed")
    assert hopeless_run.state is not None
    assert hopeless_run.state.message == "ValueError: never works"
    assert hopeless_run.run_count == 2
    assert hopeless_run.end_time is not None


def test_flow_retries_are_recorded() -> None:
    attempts: list[int] = []

    @flow(retries=2)
    def flaky_flow() -> int:
        attempts.append(1)
        add(1, 1)
        if len(attempts) == 1:
            raise RuntimeError("first attempt fails")
        return len(attempts)

    assert flaky_flow() == 2

    run = only_run("flaky-flow")
    assert state_of(run) == ("COMPLETED", "Completed")
    assert run.run_count == 2
    states = client().read_flow_run_states(run.id)
    assert [(s.type.value, s.name) for s in states] == [
        ("RUNNING", "Running"),
        ("SCHEDULED", "AwaitingRetry"),
        ("RUNNING", "Retrying"),
        ("COMPLETED", "Completed"),
    ]
    assert states[1].message == "RuntimeError: first attempt fails"
    assert [t.name for t in task_runs_of(run)] == ["add-0", "add-1"]


def test_a_flow_that_runs_out_of_retries_fails() -> None:
    @flow(retries=1)
    def always_fails() -> None:
        raise KeyError("missing")

    with pytest.raises(KeyError):
        always_fails()
    run = only_run("always-fails")
    assert state_of(run) == ("FAILED", "Failed")
    assert run.run_count == 2
    names = [s.name for s in client().read_flow_run_states(run.id)]
    assert names == ["Running", "AwaitingRetry", "Retrying", "Failed"]


# -- timeouts ---------------------------------------------------------------------


def test_a_task_that_takes_too_long_is_timed_out() -> None:
    @task(timeout_seconds=0.1)
    def slow() -> None:
        time.sleep(1)

    @flow
    def flow_with_a_slow_task() -> str:
        try:
            slow()
        except RunTimeout as exc:
            return str(exc)
        return "finished"

    assert flow_with_a_slow_task() == "timed out after 0.1 seconds"
    run = only_run("flow-with-a-slow-task")
    assert state_of(run) == ("COMPLETED", "Completed")
    (slow_run,) = task_runs_of(run)
    assert state_of(slow_run) == ("FAILED", "TimedOut")
    assert slow_run.state is not None
    assert slow_run.state.message == "RunTimeout: timed out after 0.1 seconds"


def test_a_flow_that_takes_too_long_is_timed_out() -> None:
    @flow(timeout_seconds=0.1)
    def slow_flow() -> None:
        time.sleep(1)

    with pytest.raises(RunTimeout, match=r"timed out after 0\.1 seconds"):
        slow_flow()
    run = only_run("slow-flow")
    assert state_of(run) == ("FAILED", "TimedOut")


def test_a_task_timeout_that_ends_the_flow_fails_it_without_timing_it_out() -> None:
    """Only the flow's own limit makes the flow TimedOut; a task's makes it plain Failed."""

    @task(timeout_seconds=0.1)
    def slow() -> None:
        time.sleep(1)

    @flow(timeout_seconds=30)
    def flow_ended_by_a_task_timeout() -> None:
        slow()

    with pytest.raises(RunTimeout):
        flow_ended_by_a_task_timeout()
    run = only_run("flow-ended-by-a-task-timeout")
    assert state_of(run) == ("FAILED", "Failed")
    (slow_run,) = task_runs_of(run)
    assert state_of(slow_run) == ("FAILED", "TimedOut")


def test_a_task_with_a_timeout_keeps_its_run_context() -> None:
    """The timeout machinery may run the function on a helper thread: the run goes with it."""

    @task(timeout_seconds=30)
    def logs_and_reports() -> tuple[str | None, str | None]:
        get_run_logger().info("inside a task with a timeout")
        flow_run, task_run = current_flow_run(), current_task_run()
        return (
            flow_run.flow_name if flow_run else None,
            task_run.task_run_name if task_run else None,
        )

    @flow(timeout_seconds=30)
    def flow_with_timeouts() -> tuple[str | None, str | None]:
        direct = logs_and_reports()
        submitted = logs_and_reports.submit().result()
        assert submitted == ("flow-with-timeouts", "logs_and_reports-1")
        return direct

    assert flow_with_timeouts() == ("flow-with-timeouts", "logs_and_reports-0")
    run = only_run("flow-with-timeouts")
    task_ids = {t.id for t in task_runs_of(run)}
    lines = [
        line
        for line in client().read_logs(run.id)
        if line.message == "inside a task with a timeout"
    ]
    assert len(lines) == 2
    assert {line.task_run_id for line in lines} == task_ids


# -- failures ---------------------------------------------------------------------


@flow
def typed_flow(count: int, label: str = "x") -> str:
    return label * count


def test_invalid_parameters_fail_the_run_with_a_clear_message() -> None:
    with pytest.raises(ParameterError) as raised:
        typed_flow("many")  # type: ignore[arg-type]
    message = str(raised.value)
    assert "'count'" in message
    assert "integer" in message
    assert "'many'" in message

    run = only_run("typed-flow")
    assert state_of(run) == ("FAILED", "Failed")
    assert run.state is not None
    assert run.state.message == message
    assert run.parameters == {"count": "many", "label": "x"}
    assert task_runs_of(run) == []


def test_unknown_and_missing_parameters_are_reported() -> None:
    with pytest.raises(ParameterError, match="count"):
        typed_flow()  # type: ignore[call-arg]
    with pytest.raises(ParameterError, match="colour"):
        typed_flow(1, colour="red")  # type: ignore[call-arg]
    assert typed_flow("2", label="ab") == "abab"  # type: ignore[arg-type]
    runs = runs_of("typed-flow")
    assert [state_of(r)[0] for r in runs] == ["FAILED", "FAILED", "COMPLETED"]
    assert runs[2].parameters == {"count": 2, "label": "ab"}


def test_a_failing_flow_reraises_and_is_failed() -> None:
    @flow
    def boom() -> None:
        raise ValueError("kaput")

    with pytest.raises(ValueError, match="kaput"):
        boom()
    run = only_run("boom")
    assert state_of(run) == ("FAILED", "Failed")
    assert run.state is not None
    assert run.state.message == "ValueError: kaput"
    assert run.end_time is not None


def test_nothing_is_lost_when_a_task_fails() -> None:
    @task
    def step(i: int) -> int:
        get_run_logger().info("step %d", i)
        if i == 7:
            raise ArithmeticError(f"step {i} broke")
        return i

    @flow
    def partly_broken() -> None:
        futures = step.map(range(12))
        for i in range(3):
            step(100 + i)
        [future.result() for future in futures]

    with pytest.raises(ArithmeticError, match="step 7 broke"):
        partly_broken()

    run = only_run("partly-broken")
    assert state_of(run) == ("FAILED", "Failed")
    task_runs = task_runs_of(run)
    assert len(task_runs) == 15
    failed = [t for t in task_runs if state_of(t)[0] == "FAILED"]
    assert len(failed) == 1
    assert failed[0].state is not None
    assert failed[0].state.message == "ArithmeticError: step 7 broke"
    assert sum(state_of(t) == ("COMPLETED", "Completed") for t in task_runs) == 14
    messages = {line.message for line in client().read_logs(run.id, limit=1000)}
    assert {f"step {i}" for i in [*range(12), 100, 101, 102]} <= messages


# -- logs and artifacts -----------------------------------------------------------


@task
def chatty_task() -> None:
    get_run_logger().warning("task logger line")
    print("task print line")


@flow(log_prints=True)
def chatty_flow() -> None:
    get_run_logger().info("flow logger line")
    print("flow print line")
    chatty_task()


def test_run_logs_and_prints_are_stored_with_their_run(capsys: pytest.CaptureFixture[str]) -> None:
    chatty_flow()

    run = only_run("chatty-flow")
    (task_run,) = task_runs_of(run)
    lines = {line.message: line for line in client().read_logs(run.id)}
    for message in ("flow logger line", "flow print line"):
        assert lines[message].flow_run_id == run.id
        assert lines[message].task_run_id is None
        assert lines[message].level == 20
    for message in ("task logger line", "task print line"):
        assert lines[message].flow_run_id == run.id
        assert lines[message].task_run_id == task_run.id
    assert lines["task logger line"].level == 30
    assert "flow print line" not in capsys.readouterr().out


def test_prints_stay_prints_without_log_prints(capsys: pytest.CaptureFixture[str]) -> None:
    @flow
    def quiet_flow() -> None:
        print("plain print")

    quiet_flow()
    assert "plain print" in capsys.readouterr().out
    run = only_run("quiet-flow")
    assert "plain print" not in {line.message for line in client().read_logs(run.id)}


def test_get_run_logger_outside_a_run_explains_itself() -> None:
    with pytest.raises(RuntimeError, match="outside a flow or task run"):
        get_run_logger()


@task
def tabulate() -> None:
    create_table_artifact({"city": ["Oslo", "Lima"], "temp": [3, 19]}, key="temperatures")


@flow
def reporting_flow() -> None:
    create_markdown_artifact("# Weather\nsunny", key="weather-report", description="daily")
    tabulate()
    create_link_artifact("https://example.com/run", link_text="dashboard")


def test_artifacts_are_linked_to_their_runs() -> None:
    reporting_flow()
    reporting_flow()

    first, second = runs_of("reporting-flow")
    page = client().list_artifacts(flow_run_id=str(second.id))
    assert page.count == 3
    by_type = {a.type: a for a in page.items}
    assert by_type["markdown"].data == "# Weather\nsunny"
    assert by_type["markdown"].description == "daily"
    assert by_type["markdown"].task_run_id is None
    assert by_type["table"].data == [{"city": "Oslo", "temp": 3}, {"city": "Lima", "temp": 19}]
    (task_run,) = task_runs_of(second)
    assert by_type["table"].task_run_id == task_run.id
    assert by_type["link"].data == {"link": "https://example.com/run", "link_text": "dashboard"}
    assert by_type["link"].key is None

    versions = client().list_artifacts(key="weather-report")
    assert versions.count == 2
    assert [a.flow_run_id for a in versions.items] == [second.id, first.id]
    assert client().read_latest_artifact("weather-report").flow_run_id == second.id


def test_an_invalid_artifact_key_fails_the_caller() -> None:
    @flow
    def bad_key() -> None:
        create_markdown_artifact("x", key="Not A Slug")

    with pytest.raises(ValueError, match="Not A Slug"):
        bad_key()
    assert state_of(only_run("bad-key"))[0] == "FAILED"


# -- volume -----------------------------------------------------------------------


@task
def increment(x: int) -> int:
    return x + 1


@flow
def thousand_tasks(n: int) -> int:
    return sum(increment(i) for i in range(n))


def test_a_thousand_sequential_tasks_are_all_stored(sdk_home: Path) -> None:
    assert thousand_tasks(1000) == 500_500

    run = only_run("thousand-tasks")
    assert state_of(run) == ("COMPLETED", "Completed")
    page = client().list_task_runs(run.id, limit=1)
    assert page.count == 1000
    total, completed, names = count_rows(
        sdk_home,
        "SELECT count(*), sum(state_type = 'COMPLETED'), count(DISTINCT name) FROM task_runs",
    )
    assert (total, completed, names) == (1000, 1000, 1000)


def run_script(script: Path, home: Path) -> subprocess.CompletedProcess[str]:
    """Run `script` in a fresh interpreter against the embedded database under `home`."""
    return subprocess.run(
        [sys.executable, str(script)],
        env={**os.environ, "SKYRUN_HOME": str(home)},
        capture_output=True,
        text=True,
        timeout=SUBPROCESS_TIMEOUT,
        check=False,
    )


def test_a_flow_run_cancelled_from_outside_stops_itself(sdk_home: Path) -> None:
    """The engine watches its own run: CANCELLING interrupts the flow body, the run ends CANCELLED."""
    script = sdk_home / "cancel_me.py"
    script.write_text(
        textwrap.dedent(
            """
            import threading, time
            from skyrun import flow
            from skyrun.client.client import SkyrunClient
            from skyrun.schemas.states import StateCreate, StateType
            from skyrun.sdk.context import current_flow_run
            from skyrun.settings import Settings

            @flow
            def cancel_me() -> None:
                run_id = current_flow_run().flow_run_id

                def cancel() -> None:  # as `skyrun flow-run cancel` would, on its own client
                    time.sleep(0.5)
                    SkyrunClient(Settings()).set_flow_run_state(
                        run_id, StateCreate(type=StateType.CANCELLING)
                    )

                threading.Thread(target=cancel, daemon=True).start()
                deadline = time.monotonic() + 60
                while time.monotonic() < deadline:
                    time.sleep(0.1)
                print("the body ran to its end")

            try:
                cancel_me()
            except BaseException as exc:
                print("raised", type(exc).__name__)
            """
        )
    )
    result = run_script(script, sdk_home)
    assert "the body ran to its end" not in result.stdout, result.stderr
    assert "raised" in result.stdout, result.stderr
    reader = SkyrunClient(Settings(home=sdk_home))
    try:
        (run,) = reader.filter_flow_runs(FlowRunFilter(flow_name="cancel-me")).items
        assert state_of(run)[0] == "CANCELLED"
    finally:
        reader.close()


def test_a_script_that_exits_right_after_its_flow_loses_no_task_runs(sdk_home: Path) -> None:
    script = sdk_home / "many_tasks.py"
    script.write_text(
        textwrap.dedent(
            """
            from skyrun import flow, task

            @task
            def increment(x: int) -> int:
                return x + 1

            @flow
            def many_tasks(n: int) -> int:
                futures = [increment.submit(i) for i in range(n // 2)]
                total = sum(increment(i) for i in range(n // 2, n))
                return total + sum(f.result() for f in futures)

            print(many_tasks(500))
            """
        )
    )
    result = run_script(script, sdk_home)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "125250"

    reader = SkyrunClient(Settings(home=sdk_home))
    try:
        page = reader.filter_flow_runs(FlowRunFilter(flow_name="many-tasks"))
        assert page.count == 1
        run = page.items[0]
        assert state_of(run) == ("COMPLETED", "Completed")
        task_runs: list[TaskRun] = []
        while len(task_runs) < 500:
            batch = reader.list_task_runs(run.id, limit=200, offset=len(task_runs)).items
            assert batch
            task_runs += batch
        assert len(task_runs) == 500
        assert reader.list_task_runs(run.id, limit=1).count == 500
        assert all(state_of(t) == ("COMPLETED", "Completed") for t in task_runs)
    finally:
        reader.close()


# -- import cost and the public API -----------------------------------------------

HEAVY_MODULES = ("sqlalchemy", "fastapi", "google", "skyrun.server", "alembic", "uvicorn")


def test_import_skyrun_loads_only_the_sdk() -> None:
    code = "import json, sys, skyrun, skyrun.artifacts; print(json.dumps(sorted(sys.modules)))"
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=SUBPROCESS_TIMEOUT,
        check=True,
    )
    loaded = json.loads(result.stdout)
    assert "skyrun" in loaded
    heavy = [
        name for name in loaded if any(name == h or name.startswith(h + ".") for h in HEAVY_MODULES)
    ]
    assert heavy == []


def test_public_api() -> None:
    assert skyrun.__all__ == [
        "Flow",
        "SkyrunFuture",
        "Task",
        "__version__",
        "flow",
        "get_run_logger",
        "task",
        "unmapped",
    ]
    for name in skyrun.__all__:
        assert getattr(skyrun, name) is not None
    assert skyrun.artifacts.__all__ == [
        "create_link_artifact",
        "create_markdown_artifact",
        "create_table_artifact",
    ]
    with pytest.raises(AttributeError, match="no attribute 'workflow'"):
        skyrun.workflow  # noqa: B018
