"""Turning a gcp-credentials block's data into google.auth credentials and a project.

The block's data is `{"project", "service_account_info", "service_account_file"}`
(see the blocks package); with neither key given, Google's application-default
credentials are used, except against a loopback `http://` endpoint (the local
Cloud Run emulator), where no credentials at all are sent.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import google.auth
import google.auth.exceptions
from google.auth.credentials import AnonymousCredentials, Credentials
from google.oauth2 import service_account

SCOPES = ["https://www.googleapis.com/auth/cloud-platform"]

# The project used against a local emulator when nothing names one: the
# emulator serves any project, and a user trying it has no Google project.
EMULATOR_PROJECT = "local-project"


class CredentialsError(ValueError):
    """The credentials cannot be used; the message says which field and what to fix."""


@dataclass(frozen=True)
class GcpAuth:
    """Credentials and the project they act in."""

    credentials: Credentials
    project: str


def is_loopback_http(endpoint: str) -> bool:
    """Whether an API endpoint is plain HTTP on this machine (a local emulator)."""
    parts = urlsplit(endpoint)
    return parts.scheme == "http" and (parts.hostname or "") in {"127.0.0.1", "localhost", "::1"}


def _info_of(value: Any) -> dict[str, Any] | None:
    if value is None or value == "":
        return None
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError as exc:
            raise CredentialsError(
                f"credentials: service_account_info is not valid JSON ({exc}); paste the "
                "whole key file Google gave you"
            ) from exc
    if not isinstance(value, Mapping):
        raise CredentialsError("credentials: service_account_info must be a JSON object")
    return dict(value)


def gcp_auth(data: Mapping[str, Any] | None, api_endpoint: str) -> GcpAuth:
    """Credentials from a gcp-credentials block's data (or none given).

    Args:
        data: The block's data; None or empty for application-default credentials.
        api_endpoint: The Cloud Run endpoint the credentials will be sent to.

    Returns:
        The credentials and the project: the block's `project`, else the key's
        `project_id`, else the application default's project.

    Raises:
        CredentialsError: The key or file cannot be used, or no project is known.
    """
    if data is not None and not isinstance(data, Mapping):
        raise CredentialsError(
            f"credentials must be a gcp-credentials block (gcp-credentials/NAME), got {data!r}"
        )
    data = data or {}
    project = data.get("project") or None
    info = _info_of(data.get("service_account_info"))
    key_file = data.get("service_account_file") or None
    credentials: Credentials
    try:
        if info is not None:
            credentials = service_account.Credentials.from_service_account_info(info, scopes=SCOPES)
            project = project or info.get("project_id")
        elif key_file is not None:
            if not os.path.isfile(key_file):
                raise CredentialsError(
                    f"credentials: service_account_file {key_file!r} does not exist on the "
                    "worker's machine; give the key's contents as service_account_info instead"
                )
            credentials = service_account.Credentials.from_service_account_file(
                key_file, scopes=SCOPES
            )
            project = project or getattr(credentials, "project_id", None)
        elif is_loopback_http(api_endpoint):
            credentials = AnonymousCredentials()
            project = project or os.environ.get("GOOGLE_CLOUD_PROJECT") or EMULATOR_PROJECT
        else:
            credentials, default_project = google.auth.default(scopes=SCOPES)
            project = project or default_project
    except (ValueError, KeyError) as exc:
        if isinstance(exc, CredentialsError):
            raise
        raise CredentialsError(
            f"credentials: the service account key cannot be used: {exc}"
        ) from exc
    except google.auth.exceptions.DefaultCredentialsError as exc:
        raise CredentialsError(
            "no credentials block is set and Google's application-default credentials "
            f"were not found ({exc}); set the pool's credentials job variable to a "
            "gcp-credentials block (gcp-credentials/NAME)"
        ) from exc
    if not project:
        raise CredentialsError(
            "no Google Cloud project is known: set `project` in the gcp-credentials block"
        )
    return GcpAuth(credentials=credentials, project=str(project))
