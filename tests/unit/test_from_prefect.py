"""Converting a Prefect project file: the reference guide's exact file, and what cannot map."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from skyrun._version import __version__
from skyrun.deploy.from_prefect import PrefectConversionError, convert_prefect_yaml
from skyrun.deploy.project import parse_project

# Copied unchanged from the reference guide (docs step 4), `[WORKING_DIRECTORY]` included.
GUIDE = (Path(__file__).parents[1] / "data" / "prefect-guide.yaml").read_text()


def _step(step: dict[str, object]) -> tuple[str, object]:
    return next(iter(step.items()))


def test_the_guides_exact_file_converts_and_loads() -> None:
    assert "name: [WORKING_DIRECTORY]" in GUIDE
    conversion = convert_prefect_yaml(GUIDE, "weather")
    project = parse_project(conversion.text)
    assert project.name == "weather"
    assert project.skyrun_version == __version__
    assert [_step(step) for step in project.build] == [
        (
            "skyrun.deploy.steps.run_shell_script",
            {
                "id": "configure-docker",
                "script": "gcloud auth configure-docker",
                "stream_output": True,
            },
        ),
        (
            "skyrun.deploy.steps.build_docker_image",
            {
                "id": "build_image",
                "image_name": "gcr.io/prefect-project/gcp-weather-image",
                "tag": "latest",
                "dockerfile": "auto",
            },
        ),
    ]
    assert [_step(step) for step in project.push] == [
        (
            "skyrun.deploy.steps.push_docker_image",
            {"image_name": "{{ build_image.image_name }}", "tag": "{{ build_image.tag }}"},
        )
    ]
    assert [_step(step) for step in project.pull] == [
        ("skyrun.deploy.steps.set_working_directory", {"directory": "/opt/skyrun/weather"})
    ]
    deployment = project.deployment("gcp-weather-deploy")
    assert deployment.entrypoint == "flows/weather_flow.py:fetch_weather"
    assert deployment.parameters == {"lat": 14.5994, "lon": 28.6731}
    assert deployment.schedules == [] and deployment.version is None and deployment.tags == []
    assert deployment.work_pool is not None
    assert deployment.work_pool.model_dump() == {
        "name": "my-cloud-run-pool",
        "work_queue_name": "default",
        "job_variables": {"image": "{{ build_image.image }}"},
    }
    assert conversion.notes == [
        "[WORKING_DIRECTORY] (the guide's placeholder) replaced by the folder's name 'weather'",
        "pull[0] (set_working_directory).directory: /opt/prefect/ became /opt/skyrun/ (where "
        "skyrun's images hold the project)",
        f"prefect-version dropped; skyrun-version is {__version__}",
        "build[1]: requires prefect-docker>=0.3.1 dropped (skyrun's steps are built in)",
        "push[0]: requires prefect-docker>=0.3.1 dropped (skyrun's steps are built in)",
    ]
    assert conversion.text.startswith("# skyrun.yaml: ")


def test_the_guides_file_with_the_placeholder_filled_in() -> None:
    conversion = convert_prefect_yaml(GUIDE.replace("[WORKING_DIRECTORY]", "gcp-weather"), "x")
    project = parse_project(conversion.text)
    assert project.name == "gcp-weather"
    assert _step(project.pull[0])[1] == {"directory": "/opt/skyrun/gcp-weather"}
    assert not any("WORKING_DIRECTORY" in note for note in conversion.notes)


OTHER = """\
name: shop
prefect-version: 3.1.0
definitions:
  tags: &tags [nightly]
  bucket: &bucket my-bucket
build:
- prefect.deployments.steps.utility.run_shell_script:
    script: echo {{ prefect.variables.greeting }}
    expand_env_vars: true
- prefect_docker.deployments.steps.build_docker_image:
    id: img
    requires: [prefect-docker, my-helpers>=2]
    image_name: reg/shop
    buildargs: {A: "1"}
    ignore_cache: true
push:
- prefect_gcp.deployments.steps.push_to_gcs:
    id: push_code
    requires: prefect-gcp
    bucket: *bucket
    folder: shop
    credentials: "{{ prefect.blocks.gcp-credentials.main }}"
- prefect_aws.deployments.steps.push_to_s3:
    bucket: b
pull:
- prefect.deployments.steps.git_clone_project:
    repository: https://example.com/shop.git
    credentials: "{{ prefect.blocks.github-credentials.deploy-key }}"
- prefect_gcp.deployments.steps.pull_from_gcs:
    bucket: "{{ push_code.bucket }}"
    folder: "{{ prefect.runtime.deployment.name }}"
deployments:
- name: nightly
  flow_name: shop
  tags: *tags
  entrypoint: shop.py:nightly
  schedule:
    cron: 0 2 * * *
    timezone: Europe/Paris
  is_schedule_active: false
  concurrency_limit: {limit: 3, collision_strategy: CANCEL_NEW}
  enforce_parameter_schema: true
  work_pool:
    name: pool
    work_queue_name: null
    job_variables: {}
    priority: 5
  pull: []
- name: hourly
  entrypoint: shop.py:hourly
  schedules:
  - interval: 3600
    max_active_runs: 2
  triggers: []
sources: []
"""


def test_steps_references_and_keys_are_mapped_or_listed() -> None:
    conversion = convert_prefect_yaml(OTHER, "folder")
    project = parse_project(conversion.text)
    assert project.name == "shop" and project.definitions == {
        "tags": ["nightly"],
        "bucket": "my-bucket",
    }
    assert [_step(step) for step in project.build] == [
        (
            "skyrun.deploy.steps.run_shell_script",
            {"script": "echo {{ skyrun.variables.greeting }}", "expand_env_vars": True},
        ),
        (
            "skyrun.deploy.steps.build_docker_image",
            {
                "id": "img",
                "requires": ["my-helpers>=2"],
                "image_name": "reg/shop",
                "build_args": {"A": "1"},
            },
        ),
    ]
    assert [_step(step) for step in project.push] == [
        (
            "skyrun.deploy.steps.push_to_gcs",
            {
                "id": "push_code",
                "bucket": "my-bucket",
                "folder": "shop",
                "credentials": "{{ skyrun.blocks.gcp-credentials.main }}",
            },
        ),
        # Unknown: kept, so that deploy stops at it naming it.
        ("prefect_aws.deployments.steps.push_to_s3", {"bucket": "b"}),
    ]
    assert [_step(step) for step in project.pull] == [
        (
            "skyrun.deploy.steps.git_clone",
            {
                "repository": "https://example.com/shop.git",
                "access_token": "{{ skyrun.blocks.github-credentials.deploy-key.token }}",
            },
        ),
        (
            "skyrun.deploy.steps.pull_from_gcs",
            {"bucket": "{{ push_code.bucket }}", "folder": "{{ prefect.runtime.deployment.name }}"},
        ),
    ]
    nightly, hourly = project.deployments
    assert nightly.tags == ["nightly"]
    assert [(s.schedule(), s.active) for s in nightly.schedules] == [
        ({"cron": "0 2 * * *", "timezone": "Europe/Paris"}, False)
    ]
    assert nightly.concurrency_limit == 3 and nightly.pull == []
    assert nightly.work_pool is not None and nightly.work_pool.work_queue_name is None
    assert [s.schedule() for s in hourly.schedules] == [{"interval": 3600.0}]
    notes = "\n".join(conversion.notes)
    for expected in (
        "build[1]: requires prefect-docker dropped",
        "build[1]: argument ignore_cache dropped: skyrun's build_docker_image does not take it",
        "push[0]: requires prefect-gcp dropped",
        "push[1]: step prefect_aws.deployments.steps.push_to_s3 has no skyrun equivalent; kept",
        "pull[0]: credentials became access_token",
        "{{ prefect.runtime.deployment.name }} has no skyrun equivalent; replace it",
        "deployments[0]: schedule became an entry of schedules",
        "deployments[0]: concurrency_limit became its limit, 3",
        "deployments[0]: flow_name dropped",
        "deployments[0]: enforce_parameter_schema dropped",
        "deployments[0].work_pool: priority dropped",
        "deployments[1].schedules[0]: max_active_runs dropped",
        "deployments[1]: triggers dropped",
        "sources dropped: a skyrun.yaml has no such key",
    ):
        assert expected in notes
    # Anchors are expanded: the written file has no aliases.
    assert "&" not in conversion.text and "*" not in conversion.text.replace("* * *", "")


def test_steps_of_the_wrong_shape_are_kept_and_listed() -> None:
    text = "name: x\npull:\n- prefect.deployments.steps.set_working_directory: /app\n- [a]\n"
    conversion = convert_prefect_yaml(text, "x")
    assert conversion.notes[:2] == [
        "pull[0]: the arguments of prefect.deployments.steps.set_working_directory are not a "
        "mapping; kept as written",
        "pull[1]: not a one-key step mapping; kept as written, fix it by hand",
    ]
    assert conversion.notes[-1].startswith("the converted file does not load yet")
    assert "skyrun.yaml:12: pull[0]: step prefect.deployments" in conversion.notes[-1]


def test_a_result_that_does_not_load_says_what_to_fix() -> None:
    conversion = convert_prefect_yaml("name: x\ndeployments:\n- name: a\n", "x")
    assert conversion.notes[-1].startswith(
        "the converted file does not load yet; fix before deploying:\nskyrun.yaml:"
    )
    assert "deployments[0].entrypoint: Field required" in conversion.notes[-1]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("name: x\n  bad: [\n", "prefect.yaml:2: invalid YAML"),
        ("- a\n", "prefect.yaml: not a Prefect project file (not a mapping)"),
        ("", "prefect.yaml: not a Prefect project file"),
        ("name: x\ndefinitions: &a {b: *a}\n", "prefect.yaml: an anchor contains itself"),
    ],
)
def test_what_is_not_a_project_file_is_refused(text: str, expected: str) -> None:
    with pytest.raises(PrefectConversionError) as caught:
        convert_prefect_yaml(textwrap.dedent(text), "x")
    assert str(caught.value).startswith(expected)
