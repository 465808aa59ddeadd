"""The `cloud-run` worker type's default base job template (plain data, no imports).

The server stores this template when a `cloud-run` pool is created, so this
module must import nothing from Google: the server need not have the gcp extra.
The job configuration is flat (one key per variable); `jobs.py` builds Cloud
Run's Job message from it.
"""

from __future__ import annotations

from typing import Any

# Cloud Run caps a task's timeout at 168 hours.
MAX_TIMEOUT_SECONDS = 7 * 24 * 3600

_SECRET_REFERENCE: dict[str, Any] = {
    "type": "object",
    "required": ["secret"],
    "additionalProperties": False,
    "properties": {
        "secret": {
            "type": "string",
            "minLength": 1,
            "description": "The Secret Manager secret: its name, or projects/P/secrets/NAME.",
        },
        "version": {
            "type": "string",
            "minLength": 1,
            "default": "latest",
            "description": "The secret's version (a number or 'latest').",
        },
    },
}

_LABEL_KEY = "^[a-z][a-z0-9_-]{0,62}$"
_LABEL_VALUE = "^[a-z0-9_-]{0,63}$"

_VARIABLES: dict[str, Any] = {
    "region": {
        "type": "string",
        "title": "Region",
        "description": "The Google Cloud region the jobs run in, e.g. us-central1.",
        "pattern": "^[a-z]+-[a-z]+[0-9]+$",
        "default": "us-central1",
    },
    "credentials": {
        "type": ["string", "object", "null"],
        "title": "GCP credentials",
        "description": (
            "A gcp-credentials block, written gcp-credentials/NAME. Without one the worker "
            "uses Google's application-default credentials (none against a local emulator)."
        ),
        "block_type": "gcp-credentials",
        "default": None,
    },
    "image": {
        "type": ["string", "null"],
        "title": "Image",
        "description": (
            "The container image that runs the flow, e.g. "
            "us-docker.pkg.dev/PROJECT/REPO/IMAGE:TAG (skyrun deploy's build step sets it)."
        ),
        "minLength": 1,
        "default": None,
    },
    "cpu": {
        "type": "string",
        "title": "CPU",
        "description": "The container's CPU limit, in Kubernetes units: 1000m, 2, 4.",
        "pattern": "^[0-9]+(\\.[0-9]+)?m?$",
        "default": "1000m",
    },
    "memory": {
        "type": "string",
        "title": "Memory",
        "description": "The container's memory limit: 512Mi, 2Gi, ...",
        "pattern": "^[0-9]+(Ki|Mi|Gi|Ti|k|M|G|T)?$",
        "default": "512Mi",
    },
    "service_account_name": {
        "type": ["string", "null"],
        "title": "Service account",
        "description": "The email of the service account the job runs as (default: Compute's).",
        "default": None,
    },
    "vpc_connector_name": {
        "type": ["string", "null"],
        "title": "VPC connector",
        "description": "A Serverless VPC Access connector for the job's egress.",
        "default": None,
    },
    "network": {
        "type": ["string", "null"],
        "title": "VPC network",
        "description": "Direct VPC egress: the network the job's tasks join.",
        "default": None,
    },
    "subnetwork": {
        "type": ["string", "null"],
        "title": "VPC subnetwork",
        "description": "Direct VPC egress: the subnetwork the job's tasks join.",
        "default": None,
    },
    "gpu_type": {
        "type": ["string", "null"],
        "title": "GPU type",
        "description": "The GPU each task gets, e.g. nvidia-l4 (needs gpu_count).",
        "default": None,
    },
    "gpu_count": {
        "type": ["integer", "null"],
        "title": "GPU count",
        "description": "How many GPUs of gpu_type each task gets.",
        "minimum": 1,
        "default": None,
    },
    "timeout": {
        "type": "integer",
        "title": "Timeout (seconds)",
        "description": "How long a task may run before Cloud Run stops it (up to 7 days).",
        "minimum": 1,
        "maximum": MAX_TIMEOUT_SECONDS,
        "default": 3600,
    },
    "max_retries": {
        "type": "integer",
        "title": "Task retries",
        "description": (
            "How many times Cloud Run re-runs a failed task. 0 (the default) lets the "
            "flow's own retries decide; Google's default of 3 would re-run failed flows."
        ),
        "minimum": 0,
        "maximum": 10,
        "default": 0,
    },
    "keep_job": {
        "type": "boolean",
        "title": "Keep the job",
        "description": "Leave the Cloud Run job in place after its run (to read it later).",
        "default": False,
    },
    "env": {
        "type": "object",
        "title": "Environment variables",
        "description": "Variables set in the container.",
        "additionalProperties": {"type": ["string", "null"]},
        "default": {},
    },
    "env_from_secrets": {
        "type": "object",
        "title": "Environment variables from secrets",
        "description": (
            'Variables read from Secret Manager: {"NAME": {"secret": "S", "version": "latest"}}.'
        ),
        "additionalProperties": _SECRET_REFERENCE,
        "default": {},
    },
    "api_key_secret": {
        "anyOf": [_SECRET_REFERENCE, {"type": "null"}],
        "title": "API key secret",
        "description": (
            "A Secret Manager secret holding the skyrun API key, so SKYRUN_API_KEY is not "
            "written in plain text into the job."
        ),
        "default": None,
    },
    "labels": {
        "type": "object",
        "title": "Labels",
        "description": "Labels put on the job (lower-case keys and values, at most 63 characters).",
        "propertyNames": {"pattern": _LABEL_KEY},
        "additionalProperties": {"type": "string", "pattern": _LABEL_VALUE},
        "default": {},
    },
    "command": {
        "anyOf": [
            {"type": "string", "minLength": 1},
            {"type": "array", "items": {"type": "string"}, "minItems": 1},
            {"type": "null"},
        ],
        "title": "Command",
        "description": "Run this instead of 'skyrun flow-run execute' (rarely needed).",
        "default": None,
    },
    "args": {
        "type": ["array", "null"],
        "items": {"type": "string"},
        "title": "Arguments",
        "description": "Arguments passed to the command.",
        "default": None,
    },
    "launch_stage": {
        "type": "string",
        "title": "Launch stage",
        "description": "The Cloud Run launch stage the job uses (BETA for preview features).",
        "enum": ["ALPHA", "BETA", "GA"],
        "default": "GA",
    },
    "api_endpoint": {
        "type": "string",
        "title": "API endpoint",
        "description": (
            "The Cloud Run Admin API's address; http://127.0.0.1:PORT for "
            "'skyrun cloud-run emulator'."
        ),
        "pattern": "^https?://[^\\s/]+/?$",
        "default": "https://run.googleapis.com",
    },
}

CLOUD_RUN_JOB_TEMPLATE: dict[str, Any] = {
    "job_configuration": {name: f"{{{{ {name} }}}}" for name in _VARIABLES},
    "variables": {"type": "object", "properties": _VARIABLES},
}
