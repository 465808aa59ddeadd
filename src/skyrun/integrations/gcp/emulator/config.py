"""What an emulator serves: how it executes tasks, which regions, its limits, its key."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

ExecuteMode = Literal["process", "image"]

# Cloud Run's regions (checked 2026-12). A location outside the allow-list answers 404
# NOT_FOUND as Google does, so a typo in a pool's region fails here the way it fails there.
CLOUD_RUN_REGIONS = frozenset(
    {
        "africa-south1",
        "asia-east1",
        "asia-east2",
        "asia-northeast1",
        "asia-northeast2",
        "asia-northeast3",
        "asia-south1",
        "asia-south2",
        "asia-southeast1",
        "asia-southeast2",
        "australia-southeast1",
        "australia-southeast2",
        "europe-central2",
        "europe-north1",
        "europe-north2",
        "europe-southwest1",
        "europe-west1",
        "europe-west2",
        "europe-west3",
        "europe-west4",
        "europe-west6",
        "europe-west8",
        "europe-west9",
        "europe-west10",
        "europe-west12",
        "me-central1",
        "me-central2",
        "me-west1",
        "northamerica-northeast1",
        "northamerica-northeast2",
        "northamerica-south1",
        "southamerica-east1",
        "southamerica-west1",
        "us-central1",
        "us-east1",
        "us-east4",
        "us-east5",
        "us-south1",
        "us-west1",
        "us-west2",
        "us-west3",
        "us-west4",
    }
)

# Variables a process-mode task takes from the emulator's own environment: what a
# container would have anyway (a PATH to find `python` and `skyrun`, a HOME, a locale
# and a CA bundle). Everything else comes from the job's container env only, so a
# task never sees the emulator's (or a test's) SKYRUN_* settings by accident.
PASS_THROUGH_ENV = ("PATH", "HOME", "LANG", "LC_ALL", "TZ", "TMPDIR", "SSL_CERT_FILE")


@dataclass
class EmulatorConfig:
    """How an emulator behaves.

    Attributes:
        execute: "process" runs each task's command as a local process (the container's
            command is required: there is no image to take a default from); "image"
            pulls the job's image with buildah and runs the task inside it.
        work_dir: where task logs, task working directories and (with `persist`) the
            state live; the CLI uses `--state-dir` or a fresh temporary directory.
        persist: keep jobs, executions and operations in `work_dir/state.json` across
            restarts (executions that were running when it stopped come back failed).
        service_account_key: a service-account key file; given, every API call must
            carry a token the emulator issued from it or a JWT the key signed.
        regions: the locations served (404 NOT_FOUND elsewhere); None serves any.
        job_limit: jobs per project and region (Google's quota is 1,000).
        kill_grace_seconds: between SIGTERM and SIGKILL when a task is cancelled, as
            Cloud Run gives a container 10 s.
        secrets: Secret Manager stand-ins for env vars with `valueSource.secretKeyRef`:
            secret name (short, or `projects/P/secrets/NAME`) -> value of every version.
    """

    execute: ExecuteMode = "process"
    work_dir: Path = field(default_factory=lambda: Path("."))
    persist: bool = False
    service_account_key: Path | None = None
    regions: frozenset[str] | None = CLOUD_RUN_REGIONS
    job_limit: int = 1000
    kill_grace_seconds: float = 10.0
    secrets: dict[str, str] = field(default_factory=dict)
