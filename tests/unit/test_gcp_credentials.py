"""gcp-credentials block data -> google.auth credentials and a project."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from google.auth.credentials import AnonymousCredentials
from google.oauth2 import service_account

from skyrun.integrations.gcp.credentials import CredentialsError, gcp_auth, is_loopback_http

GOOGLE = "https://run.googleapis.com"


def service_account_key(project: str = "key-project") -> dict[str, Any]:
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    return {
        "type": "service_account",
        "project_id": project,
        "private_key_id": "k1",
        "private_key": pem,
        "client_email": f"flows@{project}.iam.gserviceaccount.com",
        "client_id": "1",
        "token_uri": "http://127.0.0.1:1/token",
    }


@pytest.fixture(scope="module")
def key() -> dict[str, Any]:
    return service_account_key()


def test_service_account_info_as_object_or_json_text(key: dict[str, Any]) -> None:
    for info in (key, json.dumps(key)):
        auth = gcp_auth({"service_account_info": info}, GOOGLE)
        assert isinstance(auth.credentials, service_account.Credentials)
        assert auth.credentials.service_account_email == key["client_email"]
        assert auth.project == "key-project"
    named = gcp_auth({"service_account_info": key, "project": "block-project"}, GOOGLE)
    assert named.project == "block-project"


def test_a_service_account_file(key: dict[str, Any], tmp_path: Path) -> None:
    path = tmp_path / "key.json"
    path.write_text(json.dumps(key))
    auth = gcp_auth({"service_account_file": str(path), "project": None}, GOOGLE)
    assert isinstance(auth.credentials, service_account.Credentials)
    assert auth.project == "key-project"
    with pytest.raises(CredentialsError, match="does not exist on the worker's machine"):
        gcp_auth({"service_account_file": str(tmp_path / "missing.json")}, GOOGLE)


def test_unusable_keys_say_what_is_wrong(key: dict[str, Any]) -> None:
    with pytest.raises(CredentialsError, match="not valid JSON"):
        gcp_auth({"service_account_info": "{not json"}, GOOGLE)
    broken = {k: v for k, v in key.items() if k != "private_key"}
    with pytest.raises(CredentialsError, match="cannot be used"):
        gcp_auth({"service_account_info": broken}, GOOGLE)
    with pytest.raises(CredentialsError, match="gcp-credentials block"):
        gcp_auth(["not", "a", "mapping"], GOOGLE)  # type: ignore[arg-type]


def test_a_local_emulator_without_a_key_gets_anonymous_credentials(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("GOOGLE_CLOUD_PROJECT", raising=False)
    auth = gcp_auth(None, "http://127.0.0.1:8123")
    assert isinstance(auth.credentials, AnonymousCredentials)
    assert auth.project == "local-project"
    assert gcp_auth({"project": "mine"}, "http://localhost:1").project == "mine"
    assert is_loopback_http("http://127.0.0.1:9")
    assert not is_loopback_http("https://127.0.0.1:9")
    assert not is_loopback_http("http://run.example.com")


def test_no_block_and_no_application_default_credentials(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # No key file, no gcloud configuration and no metadata server: google.auth finds nothing.
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("CLOUDSDK_CONFIG", str(tmp_path / "gcloud"))
    monkeypatch.delenv("GOOGLE_APPLICATION_CREDENTIALS", raising=False)
    monkeypatch.setenv("NO_GCE_CHECK", "True")
    with pytest.raises(CredentialsError, match="application-default credentials"):
        gcp_auth({}, GOOGLE)
