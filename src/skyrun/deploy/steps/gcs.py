"""push_to_gcs / pull_from_gcs: a project's files to and from a Google Cloud Storage folder.

`push_to_gcs` uploads what `.skyrunignore` keeps (the same files an image would get);
`pull_from_gcs` downloads a folder where the run executes.

google-cloud-storage is imported inside the functions only: it is in the optional `gcp`
extra, and it is heavy, so a flow run whose pull steps do not use GCS never loads it.
"""

from __future__ import annotations

import os
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

from skyrun.deploy.ignore import IgnoreFileError, project_files
from skyrun.deploy.steps.errors import StepError

if TYPE_CHECKING:
    from google.cloud.storage import Client


def _client(credentials: dict[str, Any] | None, project: str | None) -> Client:
    try:
        from google.api_core.exceptions import GoogleAPIError
        from google.auth.credentials import AnonymousCredentials
        from google.auth.exceptions import DefaultCredentialsError
        from google.cloud import storage
        from google.oauth2 import service_account
    except ImportError as exc:
        raise StepError(
            f"the GCS steps need google-cloud-storage ({exc}); pip install 'skyrun[gcp]'"
        ) from exc
    if credentials is not None:
        if not isinstance(credentials, dict):
            raise StepError("`credentials:` must be a service account's JSON key as a mapping")
        try:
            account = service_account.Credentials.from_service_account_info(credentials)
        except (ValueError, KeyError) as exc:
            raise StepError(
                f"`credentials:` is not a service account key ({exc}); give the key file's "
                "content (type, project_id, private_key, client_email, token_uri)"
            ) from exc
        return storage.Client(project=project or credentials.get("project_id"), credentials=account)
    if os.environ.get("STORAGE_EMULATOR_HOST"):
        # An emulator wants no token; asking for default credentials would fail without them.
        return storage.Client(project=project or "skyrun", credentials=AnonymousCredentials())
    try:
        return storage.Client(project=project)
    except (DefaultCredentialsError, GoogleAPIError) as exc:
        raise StepError(
            f"no Google credentials found ({exc}); give `credentials:` (a service account key), "
            "set GOOGLE_APPLICATION_CREDENTIALS, or run `gcloud auth application-default login`"
        ) from exc


def _prefix(folder: str) -> str:
    folder = folder.strip("/")
    return f"{folder}/" if folder else ""


def _storage_error(exc: Exception, bucket: str, doing: str) -> StepError:
    from google.api_core import exceptions

    if isinstance(exc, exceptions.NotFound):
        return StepError(f"bucket {bucket!r} does not exist; create it or fix `bucket:`")
    if isinstance(exc, exceptions.Forbidden):
        return StepError(
            f"not allowed to {doing} bucket {bucket!r}: {exc.message}; grant the credentials "
            "access to it or give other `credentials:`"
        )
    return StepError(f"cannot {doing} bucket {bucket!r}: {exc}")


def push_to_gcs(
    bucket: str,
    folder: str = "",
    credentials: dict[str, Any] | None = None,
    project: str | None = None,
    directory: str = ".",
) -> dict[str, Any]:
    """Upload the project's files (those `.skyrunignore` keeps) to `gs://bucket/folder/`.

    Args:
        bucket: The bucket's name; it must exist.
        folder: The folder (object name prefix) in the bucket; default its root.
        credentials: A service account key (the JSON file's content); default the
            application default credentials (anonymous with STORAGE_EMULATOR_HOST set).
        project: The Google Cloud project; default that of the credentials.
        directory: The project's root.

    Returns:
        {"bucket": ..., "folder": ...}.

    Raises:
        StepError: The bucket does not exist or cannot be written, the directory does not
            exist, `.skyrunignore` has a bad line, or the credentials are unusable.
    """
    root = Path(directory)
    if not root.is_dir():
        raise StepError(f"directory {directory!r} does not exist; fix `directory:`")
    try:
        files = project_files(root)
    except IgnoreFileError as exc:
        raise StepError(str(exc)) from exc
    client = _client(credentials, project)
    target = client.bucket(bucket)
    prefix = _prefix(folder)
    for relative in files:
        path = root / relative
        # A link to a directory is listed but not followed (it could loop); links to files
        # are uploaded as the file.
        if not path.is_file():
            continue
        try:
            target.blob(prefix + relative.as_posix()).upload_from_filename(str(path))
        # The client raises api_core, auth and transport (requests) errors alike; each
        # becomes one message naming the bucket.
        except Exception as exc:
            raise _storage_error(exc, bucket, "write to") from exc
    return {"bucket": bucket, "folder": folder}


def _local_path(root: Path, relative: str, name: str) -> Path:
    parts = PurePosixPath(relative).parts
    if not parts or relative.startswith("/") or ".." in parts:
        raise StepError(
            f"object {name!r} would be written outside {str(root)!r}; remove it from the bucket"
        )
    return root.joinpath(*parts)


def pull_from_gcs(
    bucket: str,
    folder: str = "",
    credentials: dict[str, Any] | None = None,
    project: str | None = None,
    directory: str = ".",
) -> dict[str, Any]:
    """Download every object under `gs://bucket/folder/` into `directory`, keeping paths.

    Args:
        bucket: The bucket's name.
        folder: The folder (object name prefix) in the bucket; default its root.
        credentials: A service account key (the JSON file's content); default the
            application default credentials (anonymous with STORAGE_EMULATOR_HOST set).
        project: The Google Cloud project; default that of the credentials.
        directory: Where the files go (made when missing).

    Returns:
        {"bucket": ..., "folder": ..., "directory": the directory, absolute}.

    Raises:
        StepError: The bucket does not exist or cannot be read, the folder is empty, an
            object's name would leave `directory`, or the credentials are unusable.
    """
    client = _client(credentials, project)
    prefix = _prefix(folder)
    root = Path(directory).absolute()
    try:
        blobs = list(client.list_blobs(bucket, prefix=prefix))
    except Exception as exc:
        raise _storage_error(exc, bucket, "read") from exc
    # Names ending in "/" are folder placeholders some tools create, not files.
    blobs = [blob for blob in blobs if not blob.name.endswith("/")]
    if not blobs:
        raise StepError(
            f"no objects under gs://{bucket}/{prefix}; check `bucket:` and `folder:` "
            "(push_to_gcs uploads them)"
        )
    for blob in blobs:
        path = _local_path(root, blob.name[len(prefix) :], blob.name)
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            blob.download_to_filename(str(path))
        except Exception as exc:
            raise _storage_error(exc, bucket, "read") from exc
    return {"bucket": bucket, "folder": folder, "directory": str(root)}
