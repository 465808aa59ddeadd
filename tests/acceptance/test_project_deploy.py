"""Acceptance: a new user's project, from `skyrun init` to a completed run, and every way a
deploy can go wrong leaving nothing registered.

Everything is the installed `skyrun` executable in a fresh temporary folder: `skyrun init
--recipe local`, an edited `skyrun.yaml`, `skyrun deploy --name ...`, a process worker and
`skyrun deployment run --watch` against a real server; the flow is the reference guide's
weather flow with its HTTP call pointed at a fake weather service on loopback.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from project_support import TEMPERATURE, skyrun, weather_service, write_weather_project
from worker_support import ServerProcess, WorkerProcess

POOL = "my-pool"
DEPLOYMENT = "gcp-weather-deploy"
FULL_NAME = f"fetch-weather/{DEPLOYMENT}"


def weather_deployment(**extra: Any) -> dict[str, Any]:
    return {
        "name": DEPLOYMENT,
        "entrypoint": "flows/weather_flow.py:fetch_weather",
        "parameters": {"lat": 14.5994, "lon": 28.6731},
        "work_pool": {"name": POOL, "work_queue_name": "default"},
        **extra,
    }


def edit_project(directory: Path, **changes: Any) -> dict[str, Any]:
    """What a user does in an editor: load skyrun.yaml, change keys, save it."""
    path = directory / "skyrun.yaml"
    data = yaml.safe_load(path.read_text())
    data.update(changes)
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return data  # type: ignore[no-any-return]


def test_init_deploy_and_run_the_weather_flow_with_the_local_recipe(tmp_path: Path) -> None:
    home, project = tmp_path / "home", tmp_path / "weather-project"
    project.mkdir()
    server = ServerProcess(home)
    worker = None
    try:
        with weather_service() as url:
            write_weather_project(project, url)
            api = server.api_url
            created = skyrun(project, home, api, "work-pool", "create", POOL, "--type", "process")
            assert created.returncode == 0, created.stderr

            init = skyrun(project, home, api, "init", "--recipe", "local")
            assert init.returncode == 0, init.stderr
            assert (project / "skyrun.yaml").is_file() and (project / ".skyrunignore").is_file()
            again = skyrun(project, home, api, "init", "--recipe", "local")
            assert again.returncode == 1 and "--force" in again.stderr

            edit_project(project, deployments=[weather_deployment()])
            deployed = skyrun(project, home, api, "deploy", "--name", DEPLOYMENT)
            assert deployed.returncode == 0, deployed.stderr
            assert f"Run it with: skyrun deployment run {FULL_NAME}" in deployed.stdout
            assert f"no worker is polling work pool {POOL!r}" in deployed.stderr

            deployment = server.client().read_deployment_by_name("fetch-weather", DEPLOYMENT)
            assert deployment.parameters == {"lat": 14.5994, "lon": 28.6731}
            assert deployment.work_queue_name == "default"
            [pull] = deployment.pull_steps
            [(step, arguments)] = pull.items()
            assert step.endswith("set_working_directory")
            assert Path(arguments["directory"]).resolve() == project.resolve()

            worker = WorkerProcess(server, POOL)
            ran = skyrun(project, home, api, "deployment", "run", FULL_NAME, "--watch")
            assert ran.returncode == 0, ran.stdout + ran.stderr + worker.output()
            assert "COMPLETED" in ran.stdout

            artifact = skyrun(project, home, api, "artifact", "inspect", "weather-report")
            assert artifact.returncode == 0, artifact.stderr
            assert f"| Now | {TEMPERATURE} |" in artifact.stdout

            # Deploying again updates the same deployment.
            redeployed = skyrun(project, home, api, "deploy", "--name", DEPLOYMENT)
            assert redeployed.returncode == 0, redeployed.stderr
            assert "no worker is polling" not in redeployed.stderr
            again_read = server.client().read_deployment_by_name("fetch-weather", DEPLOYMENT)
            assert again_read.id == deployment.id
            assert server.client().list_deployments().count == 1
    finally:
        if worker is not None:
            worker.stop()
        server.stop()


def test_one_flow_deploys_without_a_project_file(tmp_path: Path) -> None:
    home, project = tmp_path / "home", tmp_path / "p"
    project.mkdir()
    write_weather_project(project, "http://127.0.0.1:9/")
    created = skyrun(project, home, None, "work-pool", "create", POOL, "--type", "process")
    assert created.returncode == 0, created.stderr
    deployed = skyrun(
        project,
        home,
        None,
        "deploy",
        "flows/weather_flow.py:fetch_weather",
        "--name",
        "adhoc",
        "--pool",
        POOL,
        "--param",
        "lat=1.5",
        "--param",
        "lon=2",
        "--cron",
        "0 9 * * *",
        "--timezone",
        "Europe/Paris",
        "--tag",
        "weather",
    )
    assert deployed.returncode == 0, deployed.stderr
    shown = skyrun(
        project, home, None, "deployment", "inspect", "fetch-weather/adhoc", "-o", "json"
    )
    assert shown.returncode == 0, shown.stderr
    assert '"lat": 1.5' in shown.stdout and '"Europe/Paris"' in shown.stdout
    assert '"weather"' in shown.stdout


BROKEN_PROJECTS: list[tuple[str, str, str]] = [
    (
        "malformed YAML",
        "name: p\ndeployments:\n- name: x\n  entrypoint: [flows/weather_flow.py:fetch_weather\n",
        "skyrun.yaml:",
    ),
    (
        "unknown step",
        "name: p\nbuild:\n- skyrun.deploy.steps.no_such_step: {}\n" + "DEPLOYMENTS",
        "unknown step 'skyrun.deploy.steps.no_such_step'",
    ),
    (
        "failing shell step",
        "name: p\nbuild:\n- skyrun.deploy.steps.run_shell_script:\n    script: ls /no/such/dir\n"
        + "DEPLOYMENTS",
        "build step 1 (skyrun.deploy.steps.run_shell_script)",
    ),
    (
        "missing builder",
        "name: p\nbuild:\n- skyrun.deploy.steps.build_docker_image:\n    id: build_image\n"
        "    image_name: example/weather\n    tag: '1'\n    dockerfile: auto\n" + "DEPLOYMENTS",
        "build step 1 (skyrun.deploy.steps.build_docker_image): no image builder works here",
    ),
    (
        "unresolved placeholder",
        "name: p\n" + "DEPLOYMENTS_WITH_IMAGE",
        "'{{ build_image.image }}' names no earlier step's id",
    ),
]


@pytest.mark.parametrize(
    ("case", "text", "says"), BROKEN_PROJECTS, ids=[c[0] for c in BROKEN_PROJECTS]
)
def test_a_broken_project_gives_one_clear_error_and_registers_nothing(
    tmp_path: Path, case: str, text: str, says: str
) -> None:
    home, project = tmp_path / "home", tmp_path / "p"
    project.mkdir()
    write_weather_project(project, "http://127.0.0.1:9/")
    created = skyrun(project, home, None, "work-pool", "create", POOL, "--type", "process")
    assert created.returncode == 0, created.stderr
    deployments = yaml.safe_dump({"deployments": [weather_deployment()]}, sort_keys=False)
    with_image = yaml.safe_dump(
        {
            "deployments": [
                weather_deployment(
                    work_pool={"name": POOL, "job_variables": {"image": "{{ build_image.image }}"}}
                )
            ]
        },
        sort_keys=False,
    )
    text = text.replace("DEPLOYMENTS_WITH_IMAGE", with_image).replace("DEPLOYMENTS", deployments)
    (project / "skyrun.yaml").write_text(text)
    # No docker, podman or buildah on this PATH: the image builder is missing.
    env = {"PATH": os.path.dirname(sys.executable)} if case == "missing builder" else {}
    deployed = skyrun(project, home, None, "deploy", "--name", DEPLOYMENT, **env)
    assert deployed.returncode == 1, deployed.stdout + deployed.stderr
    # One error (a failing step's own streamed output may come before it).
    assert deployed.stderr.count("Error: ") == 1, deployed.stderr
    assert "Traceback" not in deployed.stderr
    assert says in deployed.stderr, deployed.stderr
    assert "Nothing was registered." in deployed.stderr
    listed = skyrun(project, home, None, "deployment", "ls", "-o", "json")
    assert listed.returncode == 0, listed.stderr
    assert DEPLOYMENT not in listed.stdout


def test_each_distinct_build_runs_once_for_all_deployments(tmp_path: Path) -> None:
    home, project = tmp_path / "home", tmp_path / "p"
    project.mkdir()
    write_weather_project(project, "http://127.0.0.1:9/")
    created = skyrun(project, home, None, "work-pool", "create", POOL, "--type", "process")
    assert created.returncode == 0, created.stderr
    ledger = tmp_path / "builds.txt"
    shared = [
        {
            "skyrun.deploy.steps.run_shell_script": {
                "id": "v",
                "script": f"sh -c 'echo shared >> {ledger}; echo 1.0'",
            }
        }
    ]
    own = [
        {
            "skyrun.deploy.steps.run_shell_script": {
                "id": "v",
                "script": f"sh -c 'echo own >> {ledger}; echo 2.0'",
            }
        }
    ]
    data = {
        "name": "p",
        "build": shared,
        "deployments": [
            weather_deployment(name="one", version="{{ v.stdout }}"),
            weather_deployment(name="two", version="{{ v.stdout }}"),
            weather_deployment(name="three", version="{{ v.stdout }}", build=own),
        ],
    }
    (project / "skyrun.yaml").write_text(yaml.safe_dump(data, sort_keys=False))
    deployed = skyrun(project, home, None, "deploy", "--all")
    assert deployed.returncode == 0, deployed.stderr
    assert sorted(ledger.read_text().split()) == ["own", "shared"]
    for name, version in (("one", "1.0"), ("two", "1.0"), ("three", "2.0")):
        shown = skyrun(
            project, home, None, "deployment", "inspect", f"fetch-weather/{name}", "-o", "json"
        )
        assert f'"version": "{version}"' in shown.stdout, shown.stdout
