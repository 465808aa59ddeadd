"""The Cloud Run emulator in image mode: the job's image, pulled from its registry, runs.

One small image (the test base plus one script), built and pushed once; the runs are
few because each costs a working container.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from google.api_core import exceptions
from google.cloud import run_v2

from cloud_run_emulator import REGION, Emulator
from images import Registry, base_image, buildah, image_registry, image_tools

__all__ = ["base_image", "image_registry", "image_tools"]  # fixtures, used by name

SCRIPT = """\
import os, sys
print("in the image:", os.environ["GREETING"], os.environ["CLOUD_RUN_TASK_INDEX"], os.getcwd())
print(open("/etc/os-release").read().splitlines()[0])
"""


@pytest.fixture(scope="module")
def pushed_image(
    base_image: str, image_registry: Registry, tmp_path_factory: pytest.TempPathFactory
) -> str:
    context = tmp_path_factory.mktemp("emulator-image")
    (context / "hello.py").write_text(SCRIPT)
    (context / "Dockerfile").write_text(
        f'FROM {base_image}\nCOPY hello.py /app/hello.py\nWORKDIR /app\nCMD ["python3", "/app/hello.py"]\n'
    )
    image = f"{image_registry.host}/emulator-test/hello:{uuid.uuid4().hex[:8]}"
    buildah("bud", "--isolation", "chroot", "-t", image, str(context))
    buildah("push", "--tls-verify=false", image, f"docker://{image}")
    # Gone from local storage: what runs must come from the registry.
    buildah("rmi", image)
    return image


@pytest.fixture(scope="module")
def image_emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Emulator]:
    with Emulator(tmp_path_factory.mktemp("image-emulator"), "--execute", "image") as emulator:
        yield emulator


def test_the_jobs_image_runs_its_default_command_and_a_missing_image_fails_fast(
    image_emulator: Emulator, pushed_image: str, image_registry: Registry
) -> None:
    jobs, executions = image_emulator.jobs(), image_emulator.executions()
    where = f"projects/images/locations/{REGION}"
    job = run_v2.Job(
        template={
            "template": {
                "containers": [
                    {"image": pushed_image, "env": [{"name": "GREETING", "value": "hello"}]}
                ],
                "max_retries": 0,
            }
        }
    )
    created = jobs.create_job(parent=where, job_id="in-image", job=job).result(timeout=300)
    assert created.terminal_condition.state == run_v2.Condition.State.CONDITION_SUCCEEDED
    execution = jobs.run_job(name=created.name).result(timeout=300)
    assert execution.succeeded_count == 1
    log = (Path(execution.log_uri.removeprefix("file://")) / "task-0-attempt-0.log").read_text()
    assert "in the image: hello 0 /app" in log
    assert "Debian GNU/Linux 12" in log

    missing = run_v2.Job(
        template={
            "template": {
                "containers": [{"image": f"{image_registry.host}/emulator-test/missing:1"}]
            }
        }
    )
    with pytest.raises(exceptions.FailedPrecondition, match="not found"):
        jobs.create_job(parent=where, job_id="missing", job=missing).result(timeout=300)
    stored = jobs.get_job(name=f"{where}/jobs/missing")
    assert stored.terminal_condition.state == run_v2.Condition.State.CONDITION_FAILED
    assert stored.terminal_condition.reason == run_v2.Condition.CommonReason.CONTAINER_MISSING
    operation = jobs.run_job(name=stored.name)
    with pytest.raises(exceptions.FailedPrecondition, match="not found"):
        operation.result(timeout=60)
    failed = executions.get_execution(name=operation.metadata.name)
    assert (failed.failed_count, failed.succeeded_count, failed.start_time) == (1, 0, None)
