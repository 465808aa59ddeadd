"""Acceptance: a flow run that ends while the server is away keeps its records.

A flow process runs its tasks while the server answers, then ends after the
server went away (a proxy between them drops every request): its recorder
keeps trying for SKYRUN_RECORDER_FLUSH_TIMEOUT, saves the records to a spool
file under SKYRUN_HOME and says so in one line. The next skyrun process that
reaches the API sends them: every task run and log line arrives, once.
"""

from __future__ import annotations

import re
import stat
import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from lossy_proxy import LossyProxy
from processes import ServerProcess, clean_env, stop, wait_for
from skyrun.client.client import SkyrunClient
from skyrun.schemas.core import FlowRunFilter
from skyrun.settings import Settings

WAIT = 120  # a guard against hangs, not a timing assertion

FLOW = textwrap.dedent(
    """
    import pathlib, sys, time
    from skyrun import flow, get_run_logger, task

    @task
    def step(i):
        get_run_logger().info("step %d", i)
        return i

    @flow(name="spooled")
    def spooled():
        total = sum(step(i) for i in range(5))
        print("TASKS DONE", flush=True)
        while not pathlib.Path(sys.argv[1]).exists():  # the test takes the server away
            time.sleep(0.05)
        get_run_logger().info("after the server went away")
        return total

    spooled()
    """
)
NEXT = textwrap.dedent(
    """
    from skyrun import flow

    @flow(name="next")
    def next_flow():
        return 1

    next_flow()
    """
)


class Output:
    """A process's stream, collected line by line in a thread."""

    def __init__(self, stream: object) -> None:
        self.lines: list[str] = []
        self._thread = threading.Thread(target=self._read, args=(stream,), daemon=True)
        self._thread.start()

    def _read(self, stream: object) -> None:
        for line in iter(stream.readline, ""):  # type: ignore[attr-defined]
            self.lines.append(line.rstrip("\n"))

    def join(self) -> list[str]:
        self._thread.join(WAIT)
        return self.lines


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ServerProcess]:
    process = ServerProcess(tmp_path / "server-home")
    yield process
    process.stop()


def test_a_flow_ending_with_the_server_away_spools_and_the_next_process_sends(
    tmp_path: Path, server: ServerProcess
) -> None:
    proxy = LossyProxy(server.port)
    home = tmp_path / "flow-home"
    home.mkdir()
    env = clean_env(
        home,
        SKYRUN_API_URL=proxy.url,
        SKYRUN_FLUSH_INTERVAL="3600",  # nothing goes before the flow's end
        SKYRUN_RECORDER_FLUSH_TIMEOUT="2",
        SKYRUN_CLIENT_RETRIES="0",
    )
    (tmp_path / "flow.py").write_text(FLOW)
    (tmp_path / "next.py").write_text(NEXT)
    sentinel = tmp_path / "server-away"
    process = subprocess.Popen(
        [sys.executable, str(tmp_path / "flow.py"), str(sentinel)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        out, err = Output(process.stdout), Output(process.stderr)
        wait_for(lambda: "TASKS DONE" in out.lines, WAIT, f"the tasks to run ({err.lines})")
        proxy.refusing = True
        sentinel.touch()
        spool_line = wait_for(
            lambda: next((line for line in err.lines if "saved them to" in line), None),
            WAIT,
            f"the spool warning ({err.lines})",
        )
        # Let the final state through, whether the process is still retrying it or not.
        proxy.refusing = False
        process.wait(WAIT)
    finally:
        stop(process)
    # One line says it, naming the file; no other warning of the recorder's.
    assert [line for line in err.join() if line.startswith("skyrun: ")] == [spool_line]
    match = re.search(r"saved them to (\S+\.jsonl):", spool_line)
    assert match, spool_line
    spooled = Path(match.group(1))
    assert spooled.parent == home / "spool"
    assert stat.S_IMODE(spooled.stat().st_mode) == 0o600
    assert proxy.count("/api/batch") >= 2  # it tried again before saving them

    client = SkyrunClient(Settings(home=tmp_path / "reader", api_url=server.api_url))
    try:
        [run] = client.filter_flow_runs(FlowRunFilter(flow_name="spooled")).items
        assert client.list_task_runs(run.id).count == 0  # nothing arrived yet

        next_run = subprocess.run(
            [sys.executable, str(tmp_path / "next.py")],
            env=env,
            capture_output=True,
            text=True,
            timeout=WAIT,
            check=False,
        )
        assert next_run.returncode == 0, next_run.stderr
        assert not spooled.exists()
        task_runs = client.list_task_runs(run.id).items
        assert sorted(t.name for t in task_runs) == [f"step-{i}" for i in range(5)]
        assert {t.state and t.state.type.value for t in task_runs} == {"COMPLETED"}
        messages = [line.message for line in client.read_logs(run.id, limit=1000)]
        for expected in [*(f"step {i}" for i in range(5)), "after the server went away"]:
            assert messages.count(expected) == 1, (expected, messages)
    finally:
        client.close()
        proxy.close()
