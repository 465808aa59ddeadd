"""Block types: their schemas, secret fields, validation messages and masking."""

from __future__ import annotations

import json
from typing import Any

import pytest

from skyrun.blocks.base import MASK, BlockDataError, mask_secrets
from skyrun.blocks.gcp import GcpCredentials
from skyrun.blocks.references import (
    BlockReferenceError,
    parse_block_reference,
    resolve_block_references,
)
from skyrun.blocks.registry import UnknownBlockType, get_block_type
from skyrun.blocks.secret import Secret


def service_account_key(**overrides: Any) -> dict[str, Any]:
    key = {
        "type": "service_account",
        "project_id": "proj",
        "private_key_id": "abc",
        "private_key": "-----BEGIN PRIVATE KEY-----\nMII\n-----END PRIVATE KEY-----\n",
        "client_email": "runner@proj.iam.gserviceaccount.com",
        "token_uri": "https://oauth2.googleapis.com/token",
    }
    key.update(overrides)
    return {k: v for k, v in key.items() if v is not None}


def problems(data: dict[str, Any]) -> list[tuple[str, str]]:
    with pytest.raises(BlockDataError) as caught:
        GcpCredentials.validate_data(data)
    return caught.value.problems


def test_registry_knows_both_types_and_names_them_for_an_unknown_one() -> None:
    assert get_block_type("gcp-credentials") is GcpCredentials
    assert get_block_type("secret") is Secret
    with pytest.raises(UnknownBlockType) as caught:
        get_block_type("aws-credentials")
    assert str(caught.value) == (
        "unknown block type 'aws-credentials'; the types are: gcp-credentials, secret"
    )


def test_schemas_mark_secret_fields() -> None:
    schema = GcpCredentials.json_schema()
    assert schema["title"] == "GCP Credentials"
    assert schema["properties"]["service_account_info"]["secret"] is True
    assert "secret" not in schema["properties"]["project"]
    assert GcpCredentials.secret_fields() == ["service_account_info"]
    assert Secret.secret_fields() == ["value"]
    assert Secret.json_schema()["required"] == ["value"]


def test_service_account_info_as_text_or_object() -> None:
    key = service_account_key()
    assert GcpCredentials.validate_data({"service_account_info": json.dumps(key)}) == {
        "service_account_info": key
    }
    assert GcpCredentials.validate_data({"project": "p", "service_account_info": key}) == {
        "project": "p",
        "service_account_info": key,
    }
    # Neither key nor file: application-default credentials.
    assert GcpCredentials.validate_data({}) == {}


@pytest.mark.parametrize("missing", ["client_email", "private_key", "token_uri"])
def test_a_missing_key_field_is_named(missing: str) -> None:
    found = problems({"service_account_info": service_account_key(**{missing: None})})
    assert found == [
        ("service_account_info", f"is missing the field {missing!r} of a service account key")
    ]


def test_bad_keys_say_what_is_wrong() -> None:
    ((field, message),) = problems({"service_account_info": "{not json"})
    assert field == "service_account_info"
    assert message.startswith("is not valid JSON (")
    assert "--field service_account_info=@key.json" in message
    ((_, message),) = problems(
        {"service_account_info": service_account_key(type="authorized_user")}
    )
    assert "has type 'authorized_user', not 'service_account'" in message
    ((_, message),) = problems({"service_account_info": "[1]"})
    assert message == "must be a service account key: a JSON object"


def test_unknown_fields_and_both_sources_are_refused() -> None:
    ((field, message),) = problems({"projet": "p"})
    assert field == "projet"
    assert message == (
        "unknown field; the fields of gcp-credentials are: project, service_account_info, "
        "service_account_file"
    )
    ((field, message),) = problems(
        {"service_account_info": service_account_key(), "service_account_file": "/k.json"}
    )
    assert (field, message) == ("", "give service_account_info or service_account_file, not both")
    with pytest.raises(BlockDataError) as caught:
        Secret.validate_data({})
    assert str(caught.value) == "invalid secret block: value: is required"


def test_masking_hides_only_secret_values_that_are_set() -> None:
    data = {"project": "p", "service_account_info": {"private_key": "k"}}
    assert mask_secrets(data, GcpCredentials.secret_fields()) == {
        "project": "p",
        "service_account_info": MASK,
    }
    assert mask_secrets({"project": "p"}, ["service_account_info"]) == {"project": "p"}


VARIABLES = {
    "properties": {
        "credentials": {"type": ["string", "object", "null"], "block_type": "gcp-credentials"},
        "region": {"type": "string"},
    }
}


def test_block_references_in_job_variables_become_block_data() -> None:
    blocks = {("gcp-credentials", "mine"): {"project": "p"}}

    def lookup(block_type: str, name: str) -> dict[str, Any]:
        return blocks[(block_type, name)]

    values = {"credentials": "gcp-credentials/mine", "region": "gcp-credentials/mine"}
    assert resolve_block_references(values, VARIABLES, lookup) == {
        "credentials": {"project": "p"},
        "region": "gcp-credentials/mine",  # no block_type: a plain string
    }
    # Data given directly is left alone.
    assert resolve_block_references({"credentials": {"project": "q"}}, VARIABLES, lookup) == {
        "credentials": {"project": "q"}
    }
    with pytest.raises(BlockReferenceError, match="block gcp-credentials/other does not exist"):
        resolve_block_references({"credentials": "gcp-credentials/other"}, VARIABLES, lookup)
    with pytest.raises(BlockReferenceError, match="takes a gcp-credentials block, not 'secret/x'"):
        resolve_block_references({"credentials": "secret/x"}, VARIABLES, lookup)
    with pytest.raises(BlockReferenceError, match="job variable 'credentials': 'mine' is not"):
        resolve_block_references({"credentials": "mine"}, VARIABLES, lookup)


def test_parse_block_reference() -> None:
    assert parse_block_reference("gcp-credentials/my-creds") == ("gcp-credentials", "my-creds")
    for bad in ("gcp-credentials", "/x", "a/", "a/b/c"):
        with pytest.raises(BlockReferenceError):
            parse_block_reference(bad)
