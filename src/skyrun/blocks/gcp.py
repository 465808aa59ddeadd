"""The `gcp-credentials` block type: which Google Cloud project, and as whom.

With `service_account_info` (the key JSON, given as an object or as its text) or
`service_account_file` (a key file's path on the machine that uses the block), the
worker authenticates as that service account; with neither, with Google's
application-default credentials. Turning the data into google.auth credentials is
the Cloud Run worker's (`skyrun.integrations.gcp.credentials`): this module imports
nothing from Google, so the server validates blocks without the gcp extra.
"""

from __future__ import annotations

import json
from typing import Any, ClassVar

from pydantic import Field, field_validator, model_validator

from skyrun.blocks.base import Block, SecretField

# The fields of a service-account key that authenticating with it needs.
KEY_FIELDS = ("client_email", "private_key", "token_uri")


def check_service_account_info(value: Any) -> dict[str, Any] | None:
    """A service-account key as a dict: parsed from its JSON text, its fields checked.

    Raises:
        ValueError: Not JSON, not an object, not a service-account key, or missing a
            field; the message names what is wrong.
    """
    if value is None:
        return None
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError as exc:
            raise ValueError(
                f"is not valid JSON ({exc.msg} at line {exc.lineno} column {exc.colno}); "
                "give the key file's content (on the command line: "
                "--field service_account_info=@key.json), or its path as service_account_file"
            ) from None
    if not isinstance(value, dict):
        raise ValueError("must be a service account key: a JSON object")
    if value.get("type") != "service_account":
        raise ValueError(
            f"has type {value.get('type')!r}, not 'service_account': give a service account "
            "key (IAM > Service accounts > Keys > Add key > JSON)"
        )
    for field in KEY_FIELDS:
        if not isinstance(value.get(field), str) or not value[field]:
            raise ValueError(f"is missing the field {field!r} of a service account key")
    return value


class GcpCredentials(Block):
    """Google Cloud credentials for the Cloud Run worker and GCS steps."""

    block_type: ClassVar[str] = "gcp-credentials"
    title: ClassVar[str] = "GCP Credentials"
    description: ClassVar[str] = (
        "A Google Cloud project and a service account key (its JSON, or a key file's path); "
        "with neither key nor file, Google's application-default credentials."
    )

    project: str | None = Field(
        default=None,
        description="The Google Cloud project id; default: the key's project_id.",
    )
    service_account_info: dict[str, Any] | None = SecretField(
        description="The service account key JSON (an object, or its text)."
    )
    service_account_file: str | None = Field(
        default=None,
        description="Path to a service account key file on the machine that uses the block.",
    )

    @field_validator("service_account_info", mode="before")
    @classmethod
    def _key(cls, value: Any) -> Any:
        return check_service_account_info(value)

    @model_validator(mode="after")
    def _one_source(self) -> GcpCredentials:
        if self.service_account_info is not None and self.service_account_file is not None:
            raise ValueError("give service_account_info or service_account_file, not both")
        return self
