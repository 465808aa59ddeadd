"""Acceptance: `skyrun init --recipe docker`, `skyrun deploy` building a real image with
buildah and pushing it to a real registry on loopback, and the deployment's run executed
inside that image (as a Cloud Run job would run it) to COMPLETED with its artifact stored.

The image starts from the session's Debian base image (tests/images.py: no registry on the
internet here), gets skyrun from a wheel of this checkout and the project under
/opt/skyrun/<name>, honouring .skyrunignore.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from project_support import (
    TEMPERATURE,
    edit_docker_project,
    skyrun,
    weather_service,
    write_weather_project,
)
from worker_support import ServerProcess

from images import BASE_IMAGE, Registry, base_image, buildah, image_registry, image_tools

__all__ = ["base_image", "image_registry", "image_tools"]  # fixtures, used by name

POOL = "image-pool"
# A pool whose jobs take an image, as a Cloud Run pool's do (that worker type is M5's).
IMAGE_TEMPLATE = {
    "job_configuration": {"image": "{{ image }}", "command": "{{ command }}"},
    "variables": {
        "type": "object",
        "required": ["image"],
        "properties": {
            "image": {"type": "string"},
            "command": {"type": "string", "default": "skyrun flow-run execute"},
        },
    },
}


def test_docker_recipe_builds_pushes_and_the_run_completes_inside_the_image(
    tmp_path: Path, base_image: str, image_registry: Registry
) -> None:
    home, project = tmp_path / "home", tmp_path / "weather"
    project.mkdir()
    (project / "notes.secret").write_text("must not reach the image")
    image_name = f"{image_registry.host}/skyrun-test/weather"
    server = ServerProcess(home)
    try:
        with weather_service() as url:
            write_weather_project(project, url)
            api = server.api_url
            template = tmp_path / "template.json"
            template.write_text(json.dumps(IMAGE_TEMPLATE))
            created = skyrun(
                project, home, api, "work-pool", "create", POOL, "--type", "image-test",
                "--base-job-template", str(template),
            )  # fmt: skip
            assert created.returncode == 0, created.stderr

            init = skyrun(
                project, home, api, "init", "--recipe", "docker",
                "--field", f"image_name={image_name}", "--field", "tag=1",
            )  # fmt: skip
            assert init.returncode == 0, init.stderr
            (project / ".skyrunignore").write_text(
                (project / ".skyrunignore").read_text() + "\n*.secret\n"
            )
            edit_docker_project(
                project,
                BASE_IMAGE,
                [
                    {
                        "name": "gcp-weather-deploy",
                        "entrypoint": "flows/weather_flow.py:fetch_weather",
                        "parameters": {"lat": 14.5994, "lon": 28.6731},
                        "work_pool": {
                            "name": POOL,
                            "job_variables": {"image": "{{ build_image.image }}"},
                        },
                    }
                ],
            )

            deployed = skyrun(project, home, api, "deploy", "--name", "gcp-weather-deploy")
            assert deployed.returncode == 0, deployed.stdout + deployed.stderr
            assert image_registry.tags("skyrun-test/weather") == ["1"]
            client = server.client()
            deployment = client.read_deployment_by_name("fetch-weather", "gcp-weather-deploy")
            assert deployment.job_variables == {"image": f"{image_name}:1"}
            [pull] = deployment.pull_steps
            assert list(pull.values()) == [{"directory": f"/opt/skyrun/{project.name}"}]

            ran = skyrun(
                project, home, api, "deployment", "run", "fetch-weather/gcp-weather-deploy"
            )
            assert ran.returncode == 0, ran.stderr
            run_id = next(word for word in ran.stdout.split() if word.count("-") == 4).strip("()")

            container = buildah("from", "--tls-verify=false", f"{image_name}:1").stdout.strip()
            try:
                ignored = buildah(
                    "run", container, "--", "ls", f"/opt/skyrun/{project.name}", check=False
                )
                assert "weather_flow.py" not in ignored.stdout  # it is under flows/
                assert "flows" in ignored.stdout and "notes.secret" not in ignored.stdout
                executed = buildah(
                    "run", "--env", f"SKYRUN_API_URL={api}", container, "--",
                    "skyrun", "flow-run", "execute", run_id, check=False, timeout=300,
                )  # fmt: skip
            finally:
                buildah("rm", container, check=False)
            assert executed.returncode == 0, executed.stdout + executed.stderr
            final = client.read_flow_run(run_id)
            assert final.state is not None and final.state.type.value == "COMPLETED"
            artifact = skyrun(project, home, api, "artifact", "inspect", "weather-report")
            assert f"| Now | {TEMPERATURE} |" in artifact.stdout, artifact.stdout
    finally:
        server.stop()
        # Each run's images have new names (the registry's port): do not pile them up.
        buildah("rmi", "--force", f"{image_name}:1", check=False)


GUIDE_PREFECT_YAML = Path(__file__).parent.parent / "data" / "prefect-guide.yaml"


def test_the_guides_prefect_yaml_converts_and_deploys_the_same_deployment(
    tmp_path: Path, base_image: str, image_registry: Registry
) -> None:
    home, project = tmp_path / "home", tmp_path / "weather-project"
    project.mkdir()
    # The guide's tip: replace [WORKING_DIRECTORY] with the project folder's name.
    text = GUIDE_PREFECT_YAML.read_text().replace("[WORKING_DIRECTORY]", project.name)
    (project / "prefect.yaml").write_text(text)
    # `gcloud auth configure-docker` is the guide's first build step; no gcloud here.
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    gcloud = bin_dir / "gcloud"
    gcloud.write_text('#!/bin/sh\necho "gcloud $*: Docker configuration file updated."\n')
    gcloud.chmod(0o755)
    path_env = f"{bin_dir}:{os.environ['PATH']}"
    server = ServerProcess(home)
    try:
        write_weather_project(project, "http://127.0.0.1:9/")
        api = server.api_url
        template = tmp_path / "template.json"
        template.write_text(json.dumps(IMAGE_TEMPLATE))
        created = skyrun(
            project, home, api, "work-pool", "create", "my-cloud-run-pool", "--type",
            "image-test", "--base-job-template", str(template),
        )  # fmt: skip
        assert created.returncode == 0, created.stderr

        converted = skyrun(project, home, api, "init", "--from", "prefect.yaml")
        assert converted.returncode == 0, converted.stderr
        assert "prefect-version" in converted.stdout + converted.stderr  # noted as dropped
        path = project / "skyrun.yaml"
        # This machine cannot reach gcr.io: the same image goes to the loopback registry.
        registry_text = path.read_text().replace(
            "gcr.io/prefect-project", image_registry.host + "/prefect-project"
        )
        path.write_text(registry_text)
        edit_docker_project(project, BASE_IMAGE)

        deployed = skyrun(
            project, home, api, "deploy", "--name", "gcp-weather-deploy", PATH=path_env
        )
        assert deployed.returncode == 0, deployed.stdout + deployed.stderr
        assert "Docker configuration file updated." in deployed.stdout  # streamed
        assert image_registry.tags("prefect-project/gcp-weather-image") == ["latest"]
        deployment = server.client().read_deployment_by_name("fetch-weather", "gcp-weather-deploy")
        assert deployment.entrypoint == "flows/weather_flow.py:fetch_weather"
        assert deployment.parameters == {"lat": 14.5994, "lon": 28.6731}
        assert deployment.work_pool_name == "my-cloud-run-pool"
        assert deployment.work_queue_name == "default"
        assert deployment.job_variables == {
            "image": f"{image_registry.host}/prefect-project/gcp-weather-image:latest"
        }
        [pull] = deployment.pull_steps
        assert pull == {
            "skyrun.deploy.steps.set_working_directory": {
                "directory": f"/opt/skyrun/{project.name}"
            }
        }
    finally:
        server.stop()
        guide_image = f"{image_registry.host}/prefect-project/gcp-weather-image:latest"
        buildah("rmi", "--force", guide_image, check=False)
