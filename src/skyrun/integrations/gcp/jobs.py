"""Cloud Run jobs for flow runs: names, labels and the Job message.

Pure functions over the rendered job configuration (see `job_template.py`):
no calls to Google here, so every rule is unit-tested without an endpoint.
"""

from __future__ import annotations

import re
import shlex
import uuid
from collections.abc import Mapping
from typing import Any

from google.api import launch_stage_pb2
from google.cloud import run_v2
from google.protobuf import duration_pb2

from skyrun.workers.base import InfrastructureError

# Cloud Run's limit on job ids, and on the job id plus an execution token.
MAX_JOB_ID = 63
MAX_LABEL = 63
# The part of the job id taken from the run's name; the rest is the run id's hex.
SLUG_LENGTH = 30
RUN_ID_CHARS = 12
TOKEN_CHARS = 8

DEFAULT_COMMAND = ["skyrun", "flow-run", "execute"]

LABEL_MANAGED_BY = "managed-by"
LABEL_FLOW_RUN = "skyrun-flow-run-id"
LABEL_DEPLOYMENT = "skyrun-deployment-id"
LABEL_WORK_POOL = "skyrun-work-pool-id"
LABEL_KEEP = "skyrun-keep-job"
MANAGED_BY = "skyrun"


def _slug(text: str) -> str:
    """Lower-case letters, digits and single hyphens, starting with a letter."""
    slug = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
    slug = re.sub(r"^[^a-z]+", "", slug)
    return slug[:SLUG_LENGTH].rstrip("-")


def job_id_for(flow_run_name: str, flow_run_id: uuid.UUID) -> str:
    """The Cloud Run job id of a flow run: a slug of its name plus its id's first hex digits.

    Unique per run (the id part), readable (the name part), valid for Cloud Run
    (lower-case, starts with a letter, at most 63 characters) and short enough
    that the job id plus its execution token stays under 63 characters.
    """
    slug = _slug(flow_run_name) or "skyrun"
    return f"{slug}-{flow_run_id.hex[:RUN_ID_CHARS]}"


def execution_token_for(flow_run_id: uuid.UUID) -> str:
    """The `start_execution_token` of a run's job: fixed per run, so a retry repeats it."""
    return flow_run_id.hex[RUN_ID_CHARS : RUN_ID_CHARS + TOKEN_CHARS]


def label_value(value: str) -> str:
    """A label value Cloud Run accepts: lower-case letters, digits, '_' and '-', <= 63."""
    return re.sub(r"[^a-z0-9_-]", "-", value.lower())[:MAX_LABEL]


def label_key(key: str) -> str:
    """A label key Cloud Run accepts: as a value, but non-empty and starting with a letter."""
    cleaned = label_value(key)
    if not cleaned or not cleaned[0].isalpha():
        cleaned = f"x-{cleaned}"[:MAX_LABEL]
    return cleaned


def job_labels(
    user_labels: Mapping[str, Any] | None,
    flow_run_id: uuid.UUID,
    deployment_id: uuid.UUID | None,
    work_pool_id: uuid.UUID | None,
    keep_job: bool,
) -> dict[str, str]:
    """The user's labels (sanitised) and skyrun's, which win: the sweep relies on them."""
    labels = {label_key(str(k)): label_value(str(v)) for k, v in (user_labels or {}).items()}
    labels[LABEL_MANAGED_BY] = MANAGED_BY
    labels[LABEL_FLOW_RUN] = str(flow_run_id)
    if deployment_id is not None:
        labels[LABEL_DEPLOYMENT] = str(deployment_id)
    if work_pool_id is not None:
        labels[LABEL_WORK_POOL] = str(work_pool_id)
    if keep_job:
        labels[LABEL_KEEP] = "true"
    return labels


def command_of(value: Any) -> list[str]:
    """The container's command: the rendered `command` (a string split like a shell), or
    `skyrun flow-run execute` (the run id reaches it as SKYRUN_FLOW_RUN_ID)."""
    if value is None or value == "" or value == []:
        return list(DEFAULT_COMMAND)
    if isinstance(value, str):
        try:
            return shlex.split(value)
        except ValueError as exc:
            raise InfrastructureError(f"cannot parse the command {value!r}: {exc}") from exc
    if isinstance(value, list):
        return [str(part) for part in value]
    raise InfrastructureError(f"command must be a string or a list, got {value!r}")


def _secret_source(reference: Mapping[str, Any], what: str) -> run_v2.EnvVarSource:
    secret = reference.get("secret") if isinstance(reference, Mapping) else None
    if not secret:
        raise InfrastructureError(
            f'{what} must be {{"secret": "NAME", "version": "latest"}}, got {reference!r}'
        )
    return run_v2.EnvVarSource(
        secret_key_ref=run_v2.SecretKeySelector(
            secret=str(secret), version=str(reference.get("version") or "latest")
        )
    )


def container_env(
    env: Mapping[str, str],
    secrets: Mapping[str, Any] | None,
    api_key_secret: Mapping[str, Any] | None,
) -> list[run_v2.EnvVar]:
    """The container's variables: plain ones, then those read from Secret Manager.

    With `api_key_secret`, SKYRUN_API_KEY comes from the secret and its plain
    value (if any) is left out of the job.
    """
    secret_refs: dict[str, run_v2.EnvVarSource] = {
        str(name): _secret_source(ref, f"env_from_secrets.{name}")
        for name, ref in (secrets or {}).items()
    }
    if api_key_secret:
        secret_refs["SKYRUN_API_KEY"] = _secret_source(api_key_secret, "api_key_secret")
    variables = [
        run_v2.EnvVar(name=name, value=value)
        for name, value in env.items()
        if name not in secret_refs
    ]
    variables += [
        run_v2.EnvVar(name=name, value_source=source) for name, source in secret_refs.items()
    ]
    return variables


def _vpc_access(config: Mapping[str, Any]) -> run_v2.VpcAccess | None:
    connector = config.get("vpc_connector_name")
    network = config.get("network")
    subnetwork = config.get("subnetwork")
    if connector and (network or subnetwork):
        raise InfrastructureError(
            "set either vpc_connector_name or network/subnetwork (direct VPC egress), not both"
        )
    if connector:
        return run_v2.VpcAccess(connector=str(connector))
    if network or subnetwork:
        interface = run_v2.VpcAccess.NetworkInterface(
            network=str(network or ""), subnetwork=str(subnetwork or "")
        )
        return run_v2.VpcAccess(network_interfaces=[interface])
    return None


def build_job(
    config: Mapping[str, Any],
    env: Mapping[str, str],
    *,
    flow_run_id: uuid.UUID,
    deployment_id: uuid.UUID | None,
    work_pool_id: uuid.UUID | None,
) -> run_v2.Job:
    """The Job message for one flow run, from its rendered job configuration.

    Args:
        config: The rendered job configuration (the keys of `job_template.py`).
        env: The container's plain variables (SKYRUN_API_URL, SKYRUN_FLOW_RUN_ID, ...).
        flow_run_id: The run, for labels and the execution token.
        deployment_id: The run's deployment, for labels.
        work_pool_id: The run's pool, for labels (the sweep finds its jobs by it).

    Raises:
        InfrastructureError: The configuration cannot make a job (names the variable).
    """
    image = config.get("image")
    if not image:
        raise InfrastructureError(
            "the job has no image: set the 'image' job variable (skyrun deploy's build "
            "step sets it, or `skyrun work-pool update POOL --set image=...`)"
        )
    limits = {
        "cpu": str(config.get("cpu") or "1000m"),
        "memory": str(config.get("memory") or "512Mi"),
    }
    gpu_type, gpu_count = config.get("gpu_type"), config.get("gpu_count")
    if bool(gpu_type) != bool(gpu_count):
        raise InfrastructureError("set both gpu_type and gpu_count for a GPU, or neither")
    if gpu_count:
        limits["nvidia.com/gpu"] = str(gpu_count)
    container = run_v2.Container(
        image=str(image),
        command=command_of(config.get("command")),
        args=[str(arg) for arg in (config.get("args") or [])],
        env=container_env(env, config.get("env_from_secrets"), config.get("api_key_secret")),
        resources=run_v2.ResourceRequirements(limits=limits),
    )
    task = run_v2.TaskTemplate(
        containers=[container],
        max_retries=int(config.get("max_retries") or 0),
        timeout=duration_pb2.Duration(seconds=int(config.get("timeout") or 3600)),
    )
    if config.get("service_account_name"):
        task.service_account = str(config["service_account_name"])
    vpc = _vpc_access(config)
    if vpc is not None:
        task.vpc_access = vpc
    if gpu_type:
        task.node_selector = run_v2.NodeSelector(accelerator=str(gpu_type))
    stage = str(config.get("launch_stage") or "GA")
    return run_v2.Job(
        labels=job_labels(
            config.get("labels"),
            flow_run_id,
            deployment_id,
            work_pool_id,
            bool(config.get("keep_job")),
        ),
        launch_stage=launch_stage_pb2.LaunchStage.Value(stage),
        template=run_v2.ExecutionTemplate(task_count=1, template=task),
        start_execution_token=execution_token_for(flow_run_id),
    )
