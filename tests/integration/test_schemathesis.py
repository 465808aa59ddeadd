"""Schemathesis against a real server: no 500s, and every answer is one the schema documents.

Each of the four runs (SQLite and PostgreSQL, with and without API keys) sends a
bounded, reproducible (derandomised) set of generated requests to every
operation in /api/openapi.json, valid ones and invalid ones, and checks each
answer: not a server error, a documented status code and content type, and a
body that matches the documented schema.
"""

from __future__ import annotations

import traceback
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.config import (
    GenerationConfig,
    ProjectConfig,
    ProjectsConfig,
    SchemathesisConfig,
)
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from processes import ServerProcess
from skyrun.client.client import SkyrunClient
from skyrun.schemas.api_keys import ApiKeyScope
from skyrun.settings import Settings

# Per operation and mode: ~45 operations x 2 modes x 4 runs stay near a minute.
EXAMPLES = 4
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
# A claim may wait up to 60 s for a run by design; the fuzzer need not sit through it.
MAX_CLAIM_WAIT = 0.2


@pytest.fixture(params=[False, True], ids=["no-auth", "auth"])
def server(
    request: pytest.FixtureRequest, tmp_path: Path, database_url: str
) -> Iterator[tuple[ServerProcess, dict[str, str]]]:
    home = tmp_path / "server"
    headers: dict[str, str] = {}
    env: dict[str, str] = {}
    if request.param:
        # The first admin key, made as the README says: against the server's database.
        local = SkyrunClient(Settings(home=home, database_url=database_url))
        try:
            key = local.create_api_key("schemathesis", ApiKeyScope.ADMIN).key
        finally:
            local.close()
        headers = {"Authorization": f"Bearer {key}"}
        env["SKYRUN_SERVER_AUTH_ENABLED"] = "true"
    server = ServerProcess(home, database_url=database_url, **env)
    try:
        yield server, headers
    finally:
        server.stop()


def _bounded(case: Any) -> Any:
    if case.path.endswith("/claim") and isinstance(case.body, dict):
        wait = case.body.get("wait_seconds")
        if isinstance(wait, int | float) and not isinstance(wait, bool) and wait > MAX_CLAIM_WAIT:
            case.body["wait_seconds"] = MAX_CLAIM_WAIT
    return case


def test_the_api_answers_every_generated_request_as_documented(
    server: tuple[ServerProcess, dict[str, str]],
) -> None:
    process, headers = server
    base_url = process.api_url.removesuffix("/api")
    config = SchemathesisConfig(
        projects=ProjectsConfig(
            default=ProjectConfig(
                # NUL characters included: the server stores them as U+FFFD
                # (skyrun/safe_text.py), PostgreSQL too.
                generation=GenerationConfig(allow_x00=True, deterministic=True),
            )
        )
    )
    schema = schemathesis.openapi.from_url(f"{process.api_url}/openapi.json", config=config)
    failures: list[str] = []
    operations = 0
    for result in schema.get_all_operations():
        operation = result.ok()
        operations += 1
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):

            @settings(
                max_examples=EXAMPLES,
                deadline=None,
                derandomize=True,
                database=None,
                suppress_health_check=list(HealthCheck),
                phases=[Phase.generate],  # no shrinking: a failure is reported as found
            )
            @given(case=operation.as_strategy(generation_mode=mode))
            def exercise(case: Any) -> None:
                _bounded(case).call_and_validate(base_url=base_url, headers=headers, checks=CHECKS)

            try:
                exercise()
            except Unsatisfiable:
                # No invalid request exists (a path of free-text names): nothing to send.
                assert mode is GenerationMode.NEGATIVE, operation.label
            except (Exception, BaseExceptionGroup) as exc:
                detail = "".join(traceback.format_exception_only(exc)).strip()
                failures.append(f"{operation.label} ({mode.value}): {detail[:2000]}")
    assert operations > 30
    assert not failures, "\n\n".join(failures)
