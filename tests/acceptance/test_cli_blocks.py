"""`skyrun block ...` as a user runs it, against a server: a gcp-credentials block made from a
freshly generated service-account key, inspected (masked), updated, listed and deleted, and
the errors a user meets on the way."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from processes import SKYRUN, ServerProcess, clean_env

SUBPROCESS_TIMEOUT = 120  # a guard against a hang, not a timing assertion


def service_account_key() -> dict[str, Any]:
    """A service-account key file's content, with a real RSA private key made here."""
    private_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = private_key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    return {
        "type": "service_account",
        "project_id": "skyrun-test",
        "private_key_id": "0123456789abcdef",
        "private_key": pem,
        "client_email": "runner@skyrun-test.iam.gserviceaccount.com",
        "client_id": "1234567890",
        "token_uri": "http://127.0.0.1:1/token",
    }


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    process = ServerProcess(tmp_path_factory.mktemp("server"))
    yield process
    process.stop()


def block(tmp_path: Path, server: ServerProcess, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(SKYRUN), "block", *args],
        cwd=tmp_path,
        env=clean_env(tmp_path / "home", SKYRUN_API_URL=server.api_url, COLUMNS="200"),
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=SUBPROCESS_TIMEOUT,
        check=False,
    )


def ok(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, result.stderr
    return result.stdout


def error(result: subprocess.CompletedProcess[str]) -> str:
    """The one `Error:` line of a failed command."""
    assert result.returncode == 1, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    [line] = result.stderr.strip().splitlines()
    assert line.startswith("Error: ")
    return line


def stored(server: ServerProcess, reference: str) -> dict[str, Any]:
    response = httpx.get(f"{server.api_url}/blocks/{reference}?include_secrets=true", timeout=10)
    response.raise_for_status()
    data: dict[str, Any] = response.json()["data"]
    return data


def test_a_gcp_credentials_block_from_create_to_delete(
    tmp_path: Path, server: ServerProcess
) -> None:
    key = service_account_key()
    key_file = tmp_path / "key.json"
    key_file.write_text(json.dumps(key, indent=2))

    types = ok(block(tmp_path, server, "types"))
    assert "gcp-credentials" in types and "service_account_info*" in types

    made = block(
        tmp_path,
        server,
        "create",
        "gcp-credentials",
        "my-creds",
        "--field",
        "project=skyrun-test",
        "--field",
        f"service_account_info=@{key_file}",
    )
    assert ok(made).strip() == "Created block gcp-credentials/my-creds"
    assert stored(server, "gcp-credentials/my-creds") == {
        "project": "skyrun-test",
        "service_account_info": key,
    }

    shown = ok(block(tmp_path, server, "inspect", "gcp-credentials/my-creds"))
    assert "skyrun-test" in shown and "********" in shown
    assert "PRIVATE KEY" not in shown and "runner@" not in shown
    as_json = json.loads(
        ok(block(tmp_path, server, "inspect", "gcp-credentials/my-creds", "-o", "json"))
    )
    assert as_json["data"] == {"project": "skyrun-test", "service_account_info": "********"}

    updated = block(
        tmp_path, server, "update", "gcp-credentials/my-creds", "--field", "project=other"
    )
    assert "Updated block gcp-credentials/my-creds: project" in ok(updated)
    assert stored(server, "gcp-credentials/my-creds") == {
        "project": "other",
        "service_account_info": key,  # untouched by an update of another field
    }

    listed = json.loads(
        ok(block(tmp_path, server, "ls", "--type", "gcp-credentials", "-o", "json"))
    )
    assert [(b["block_type"], b["name"]) for b in listed] == [("gcp-credentials", "my-creds")]

    assert ok(block(tmp_path, server, "delete", "gcp-credentials/my-creds")).strip() == (
        "Deleted block gcp-credentials/my-creds"
    )
    gone = error(block(tmp_path, server, "inspect", "gcp-credentials/my-creds"))
    assert gone == "Error: block gcp-credentials/my-creds not found (HTTP 404)"


def test_mistakes_are_one_line_naming_what_to_fix(tmp_path: Path, server: ServerProcess) -> None:
    key = service_account_key()
    del key["token_uri"]
    key_file = tmp_path / "key.json"
    key_file.write_text(json.dumps(key))
    bad_json = tmp_path / "bad.json"
    bad_json.write_text('{"project": "p",}')

    line = error(block(tmp_path, server, "create", "aws-credentials", "x"))
    assert (
        line
        == "Error: unknown block type 'aws-credentials'; the types are: gcp-credentials, secret"
    )
    line = error(block(tmp_path, server, "create", "gcp-credentials", "x", "--field", "projct=p"))
    assert "gcp-credentials has no field 'projct'; its fields are: project," in line
    line = error(block(tmp_path, server, "create", "gcp-credentials", "x", "--file", str(bad_json)))
    assert line.startswith(f"Error: {bad_json}:1:17: not valid JSON")
    line = error(
        block(
            tmp_path,
            server,
            "create",
            "gcp-credentials",
            "x",
            "--field",
            f"service_account_info=@{key_file}",
        )
    )
    assert "service_account_info: is missing the field 'token_uri' of a service account key" in line
    line = error(block(tmp_path, server, "inspect", "my-creds"))
    assert "'my-creds' is not a block reference: write TYPE/NAME" in line
    line = error(block(tmp_path, server, "create", "secret", "Bad.Name", "--field", "value=x"))
    assert "may hold only lower-case letters, digits, '_' and '-'" in line
