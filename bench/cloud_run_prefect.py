"""Prefect's side of the cloud-run benchmark; run with the Prefect venv's interpreter.

``setup``: a ``GcpCredentials`` block from a service-account key, a ``cloud-run-v2``
work pool whose base job template defaults to that block, the region and an image
(with a concurrency limit), and a deployment of ``cloud_run_flow.py:trivial`` from a
local folder (its pull step sets that folder as the working directory). Prints the
deployment id as the last line.

``worker EMULATOR_URL ARGS...``: ``prefect ARGS...`` (``worker start ...``) in this
process, with prefect-gcp's Cloud Run client pointed at the emulator. prefect-gcp
0.6.22 builds its discovery client with ``api_endpoint="https://run.googleapis.com"``
fixed in code (``CloudRunWorkerV2._get_client``), so this process wraps
``googleapiclient.discovery.build`` and swaps that one endpoint for the emulator's.
No installed file is changed; every other call is the worker's own.

One more adaptation, in the same process: prefect-gcp reads two fields of Google's
answers unconditionally (``response["latestCreatedExecution"]`` of a job,
``response["parallelism"]`` of an execution) that the emulator leaves out when they
hold their proto3 defaults (a job not run yet; parallelism 0, "as many as possible"),
as its JSON leaves out every default. The client's JSON model fills in just those
two defaults (``{}`` and ``0``) when absent, so the worker's logic runs unchanged.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

GOOGLE_ENDPOINT = "https://run.googleapis.com"


def point_discovery_at(endpoint: str) -> None:
    """Make ``discovery.build`` calls for Google's Cloud Run endpoint use ``endpoint``."""
    from google.api_core.client_options import ClientOptions
    from googleapiclient import discovery
    from googleapiclient.model import JsonModel

    class WithDefaults(JsonModel):  # type: ignore[misc]
        def deserialize(self, content: Any) -> Any:
            body = super().deserialize(content)
            name = body.get("name", "") if isinstance(body, dict) else ""
            if "/executions/" in name and "taskCount" in body:
                body.setdefault("parallelism", 0)
            elif "/jobs/" in name and "template" in body:
                body.setdefault("latestCreatedExecution", {})
            return body

    real_build = discovery.build

    def build(*args: Any, **kwargs: Any) -> Any:
        options = kwargs.get("client_options")
        if getattr(options, "api_endpoint", None) == GOOGLE_ENDPOINT:
            kwargs["client_options"] = ClientOptions(api_endpoint=endpoint)
            kwargs["model"] = WithDefaults()
        return real_build(*args, **kwargs)

    # prefect_gcp.workers.cloud_run_v2 calls `discovery.build` through the module.
    discovery.build = build


def setup(args: argparse.Namespace) -> None:
    from prefect import flow
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import WorkPoolCreate
    from prefect_gcp import GcpCredentials
    from prefect_gcp.workers.cloud_run_v2 import CloudRunWorkerV2

    key = json.loads(Path(args.key).read_text())
    block_id = GcpCredentials(service_account_info=key, project=args.project).save(
        "bench-creds", overwrite=True
    )
    template = CloudRunWorkerV2.get_default_base_job_template()
    variables = template["variables"]["properties"]
    variables["credentials"]["default"] = {"$ref": {"block_document_id": str(block_id)}}
    variables["region"]["default"] = args.region
    variables["image"]["default"] = args.image
    with get_client(sync_client=True) as client:
        client.create_work_pool(
            WorkPoolCreate(
                name=args.pool,
                type="cloud-run-v2",
                base_job_template=template,
                concurrency_limit=args.concurrency,
            )
        )
    deployment_id = flow.from_source(
        source=args.project_dir, entrypoint="cloud_run_flow.py:trivial"
    ).deploy("cloud-run", work_pool_name=args.pool, image=args.image, build=False, push=False)
    print(deployment_id)


def main() -> None:
    if sys.argv[1:2] == ["worker"]:
        point_discovery_at(sys.argv[2])
        from prefect.cli import app

        sys.argv = ["prefect", *sys.argv[3:]]
        sys.exit(app())
    parser = argparse.ArgumentParser()
    parser.add_argument("command", choices=["setup"])
    for option in ("--key", "--project", "--region", "--image", "--pool", "--project-dir"):
        parser.add_argument(option, required=True)
    parser.add_argument("--concurrency", type=int, required=True)
    setup(parser.parse_args())


if __name__ == "__main__":
    main()
