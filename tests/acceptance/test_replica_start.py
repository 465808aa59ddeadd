"""Two `skyrun server start` processes on one new database at once: both come up.

Each builds the schema on start when it finds none; the migration lock makes
the second wait for the first and then find the schema built (without it, one
of them fails on a table the other has just created).
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

from processes import ServerProcess


def test_two_servers_starting_at_once_on_a_new_database_both_come_up(
    empty_database_url: str, tmp_path: Path
) -> None:
    homes = [tmp_path / "first", tmp_path / "second"]
    with ThreadPoolExecutor(max_workers=2) as pool:
        starting = [
            pool.submit(ServerProcess, home, database_url=empty_database_url) for home in homes
        ]
        outcomes = [future.exception() or future.result() for future in starting]
    servers = [s for s in outcomes if isinstance(s, ServerProcess)]
    try:
        assert len(servers) == 2, [str(o) for o in outcomes if not isinstance(o, ServerProcess)]
        first, second = servers
        created = httpx.post(
            f"{first.api_url}/work_pools", json={"name": "shared", "type": "process"}, timeout=30
        )
        assert created.status_code == 201, created.text
        seen = httpx.get(f"{second.api_url}/work_pools/shared", timeout=30)
        assert seen.status_code == 200, seen.text
    finally:
        for server in servers:
            server.stop()
