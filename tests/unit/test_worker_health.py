"""`--with-healthcheck` on Cloud Run's terms: the port from $PORT, `/` served as `/health`."""

from __future__ import annotations

import socket

import httpx
import pytest

from skyrun.workers.health import (
    DEFAULT_PORT,
    HealthCheckError,
    HealthServer,
    PollHealth,
    healthcheck_port,
)


def test_the_port_is_port_when_set_else_8080() -> None:
    assert healthcheck_port({}) == DEFAULT_PORT == 8080
    assert healthcheck_port({"PORT": ""}) == 8080
    assert healthcheck_port({"PORT": "9090"}) == 9090
    assert healthcheck_port({"PORT": " 65535 "}) == 65535


@pytest.mark.parametrize("value", ["abc", "0", "65536", "-1", "80.5"])
def test_a_port_that_is_not_a_port_number_is_refused_naming_port(value: str) -> None:
    with pytest.raises(HealthCheckError) as caught:
        healthcheck_port({"PORT": value})
    message = str(caught.value)
    assert f"PORT={value!r}" in message and "1-65535" in message


def test_root_answers_as_health_does_and_other_paths_do_not() -> None:
    # Cloud Run's default probes go to the container's port at `/`.
    server = HealthServer(PollHealth(threshold_seconds=3600), port=0, host="127.0.0.1")
    server.start()
    try:
        base = f"http://127.0.0.1:{server.port}"
        for path in ("/", "/health", "/health/?probe=1"):
            response = httpx.get(base + path, timeout=5)
            assert response.status_code == 200, path
            assert response.json()["status"] == "ok"
        assert httpx.get(base + "/metrics", timeout=5).status_code == 404
    finally:
        server.stop()


def test_a_taken_port_is_an_error_naming_it() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(HealthCheckError) as caught:
            HealthServer(PollHealth(threshold_seconds=30), port=port, host="127.0.0.1")
    assert f"127.0.0.1:{port}" in str(caught.value)
    assert "set PORT to a free port" in str(caught.value)
