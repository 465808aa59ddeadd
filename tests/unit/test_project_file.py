"""The skyrun.yaml model and loader: anchors, merge keys, and errors that name file, line, key."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from skyrun.deploy.project import ProjectFileError, load_project, parse_project

GOOD = """\
name: weather
skyrun-version: 0.1.0
definitions:
  pool: &pool
    name: cloud-run
    work_queue_name: default
    job_variables:
      image: '{{ build_image.image }}'
  tags: &tags [weather, daily]
build:
- skyrun.deploy.steps.build_docker_image:
    id: build_image
    requires: [skyrun]
    image_name: registry.local/weather
    tag: latest
    dockerfile: auto
push:
- skyrun.deploy.steps.push_docker_image:
    image_name: '{{ build_image.image_name }}'
    tag: '{{ build_image.tag }}'
pull:
- set_working_directory:
    directory: /opt/skyrun/weather
deployments:
- name: daily
  version: 1.2
  tags: *tags
  entrypoint: flows/weather.py:fetch_weather
  parameters: {lat: 14.5994, lon: 28.6731}
  schedules:
  - cron: "0 9 * * *"
    timezone: Europe/Paris
  - interval: 3600
    active: false
  - rrule: FREQ=WEEKLY;BYDAY=MO
  work_pool:
    <<: *pool
    work_queue_name: fast
  concurrency_limit: 2
  paused: true
- name: adhoc
  entrypoint: flows/weather.py:fetch_weather
  work_pool: *pool
  pull: []
  build:
  - run_shell_script:
      script: echo hi
"""


def test_a_full_file_loads_with_anchors_aliases_and_merge_keys(tmp_path: Path) -> None:
    path = tmp_path / "skyrun.yaml"
    path.write_text(GOOD)
    project = load_project(path)
    assert project.name == "weather"
    assert project.skyrun_version == "0.1.0"
    daily = project.deployment("daily")
    assert daily.version == "1.2"
    assert daily.tags == ["weather", "daily"]
    assert daily.work_pool is not None
    # The merge key brings the anchor's keys; the mapping's own key wins.
    assert daily.work_pool.name == "cloud-run"
    assert daily.work_pool.work_queue_name == "fast"
    assert daily.work_pool.job_variables == {"image": "{{ build_image.image }}"}
    assert [s.schedule() for s in daily.schedules] == [
        {"cron": "0 9 * * *", "timezone": "Europe/Paris"},
        {"interval": 3600.0},
        {"rrule": "FREQ=WEEKLY;BYDAY=MO"},
    ]
    assert [s.schedule_create().active for s in daily.schedules] == [True, False, True]
    assert daily.concurrency_limit == 2 and daily.paused
    assert project.build[0]["skyrun.deploy.steps.build_docker_image"]["id"] == "build_image"


def test_deployment_steps_inherit_unless_set(tmp_path: Path) -> None:
    project = parse_project(GOOD)
    daily, adhoc = project.deployment("daily"), project.deployment("adhoc")
    assert project.steps(daily, "pull") == project.pull
    assert project.steps(daily, "build") == project.build
    assert project.steps(adhoc, "pull") == []
    assert project.steps(adhoc, "build") == [{"run_shell_script": {"script": "echo hi"}}]
    assert project.steps(adhoc, "push") == project.push


def test_unknown_deployment_lists_the_names() -> None:
    project = parse_project(GOOD, "proj/skyrun.yaml")
    with pytest.raises(ProjectFileError) as caught:
        project.deployment("weekly")
    assert str(caught.value) == (
        "proj/skyrun.yaml: no deployment named 'weekly'; it has 'daily', 'adhoc'"
    )
    with pytest.raises(ProjectFileError, match="it has none yet: add one under `deployments:`"):
        parse_project("name: x\n").deployment("a")


def _error(text: str) -> str:
    with pytest.raises(ProjectFileError) as caught:
        parse_project(textwrap.dedent(text), "skyrun.yaml")
    return str(caught.value)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param(
            """\
            name: x
            deployments:
            - name: a
              entrypoint: f.py:g
              work_pool:
                work_queue_name: q
            """,
            "skyrun.yaml:5: deployments[0].work_pool.name: Field required; this mapping "
            "takes name (required), work_queue_name, job_variables",
            id="missing-pool-name",
        ),
        pytest.param(
            "name: x\nbuidl: []\n",
            "skyrun.yaml:2: buidl: unknown key; allowed keys here: name (required), "
            "skyrun-version, build, push, pull, deployments, definitions",
            id="unknown-top-key",
        ),
        pytest.param(
            "deployments: []\n",
            "skyrun.yaml:1: name: Field required",
            id="missing-name",
        ),
        pytest.param(
            "name: x\ndeployments:\n- name: a\n  entrypoint: f.py:g\n  schedule: {}\n",
            "skyrun.yaml:5: deployments[0].schedule: unknown key; allowed keys here: name "
            "(required), version, tags",
            id="singular-schedule",
        ),
        pytest.param(
            "name: x\ndeployments:\n- name: a\n  entrypoint: flows/f.py\n",
            "skyrun.yaml:4: deployments[0].entrypoint: 'flows/f.py' is not an entrypoint; "
            "write 'path/to/file.py:function'",
            id="bad-entrypoint",
        ),
        pytest.param(
            "name: x\ndeployments:\n- name: a\n  entrypoint: f.py:g\n  schedules:\n"
            "  - cron: every day\n",
            "skyrun.yaml:6: deployments[0].schedules[0]: cron: invalid cron expression 'every day'",
            id="bad-cron",
        ),
        pytest.param(
            "name: x\ndeployments:\n- name: a\n  entrypoint: f.py:g\n  schedules:\n"
            "  - timezone: UTC\n",
            "skyrun.yaml:6: deployments[0].schedules[0]: cannot infer schedule kind: "
            "expected exactly one of 'cron', 'interval', 'rrule' (found: none)",
            id="schedule-without-kind",
        ),
        pytest.param(
            "name: x\ndeployments:\n- name: a\n  entrypoint: f.py:g\n  schedules:\n"
            "  - {interval: 60, timezone: Mars/Olympus}\n",
            "skyrun.yaml:6: deployments[0].schedules[0]: timezone: unknown time zone "
            "'Mars/Olympus'",
            id="bad-timezone",
        ),
        pytest.param(
            "name: x\nbuild:\n- run_shell_script: {script: a}\n  id: x\n",
            "skyrun.yaml:3: build[0]: a step is a mapping with one key, the step's name, "
            "holding its arguments",
            id="step-with-two-keys",
        ),
        pytest.param(
            "name: x\npull:\n- set_working_directory: /app\n",
            "skyrun.yaml:3: pull[0]: step set_working_directory: its arguments must be a "
            "mapping of argument names to values, got '/app'",
            id="step-arguments-not-a-mapping",
        ),
        pytest.param(
            "name: x\npush:\n- a: {}\n- b: {requires: {pkg: 1}}\n",
            "skyrun.yaml:4: push[1]: step b: `requires` must be a requirement ('pkg>=1') or "
            "a list of them",
            id="bad-requires",
        ),
        pytest.param(
            "name: x\nbuild: {a: 1}\n",
            "skyrun.yaml:2: build: Input should be a valid list, got {'a': 1}",
            id="steps-not-a-list",
        ),
        pytest.param(
            "name: x\ndeployments:\n- name: a\n  entrypoint: f.py:g\n  work_pool: pool-1\n",
            "skyrun.yaml:5: deployments[0].work_pool: must be a mapping with keys name "
            "(required), work_queue_name, job_variables, got 'pool-1'",
            id="pool-as-text",
        ),
        pytest.param(
            "name: x\ndeployments:\n- name: a\n  entrypoint: f.py:g\n  concurrency_limit: -1\n",
            "skyrun.yaml:5: deployments[0].concurrency_limit: Input should be greater than "
            "or equal to 0, got -1",
            id="negative-concurrency",
        ),
        pytest.param(
            "name: x\ndeployments:\n- name: a\n  entrypoint: f.py:g\n- name: b\n"
            "  entrypoint: f.py:g\n- name: a\n  entrypoint: f.py:h\n",
            "skyrun.yaml:2: deployments: deployments[2] is named 'a' like deployments[0]; "
            "give each deployment its own name",
            id="duplicate-deployment-names",
        ),
        pytest.param(
            "name: x\ndeployments:\n- name: a\n  name: b\n  entrypoint: f.py:g\n",
            "skyrun.yaml:4: deployments[0].name: duplicate key (first written on line 3); "
            "keep one of them",
            id="duplicate-key",
        ),
        pytest.param(
            "name: x\ndeployments:\n- name: a\n   entrypoint: f.py:g\n",
            "skyrun.yaml:4: invalid YAML, column 14: mapping values are not allowed here",
            id="yaml-syntax",
        ),
        pytest.param(
            "name: x\npull: *nowhere\n",
            "skyrun.yaml:2: invalid YAML, column 7: found undefined alias 'nowhere'",
            id="undefined-alias",
        ),
        pytest.param(
            "",
            "skyrun.yaml:1: the file is empty",
            id="empty",
        ),
        pytest.param(
            "- name: x\n",
            "skyrun.yaml:1: (top level): must be a mapping with keys name (required)",
            id="top-level-list",
        ),
    ],
)
def test_malformed_files_name_the_line_and_the_key(text: str, expected: str) -> None:
    assert _error(text).startswith(expected)


def test_a_merged_key_is_reported_where_the_anchor_writes_it() -> None:
    message = _error(
        """\
        name: x
        definitions:
          pool: &pool
            name: cloud
            job_variables: not-a-mapping
        deployments:
        - name: a
          entrypoint: f.py:g
          work_pool:
            <<: *pool
        """
    )
    assert message.startswith(
        "skyrun.yaml:5: deployments[0].work_pool.job_variables: must be a mapping, "
        "got 'not-a-mapping'"
    )


def test_every_problem_is_listed_in_line_order() -> None:
    message = _error("name: x\nzzz: 1\ndeployments:\n- name: a\n  entrypoint: nope\n  ppp: 2\n")
    lines = message.splitlines()
    assert [line.split(":")[1] for line in lines] == ["2", "5", "6"]


def test_load_project_names_a_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ProjectFileError, match="no such file; `skyrun init` writes one"):
        load_project(tmp_path / "skyrun.yaml")


def test_load_project_takes_the_folder_too(tmp_path: Path) -> None:
    (tmp_path / "skyrun.yaml").write_text("name: x\n")
    assert load_project(tmp_path).name == "x"


def test_a_recursive_alias_does_not_hang() -> None:
    project = parse_project("name: x\ndefinitions: &loop\n  self: *loop\n")
    assert project.definitions["self"] is project.definitions


def test_keys_written_empty_mean_none() -> None:
    project = parse_project(
        "name: x\nbuild:\npush: null\ndeployments:\n- name: a\n  entrypoint: f.py:g\n"
        "  tags:\n  parameters:\n  schedules:\n  pull:\n  work_pool: {name: p, job_variables:}\n"
    )
    (deployment,) = project.deployments
    assert (project.build, project.push, project.pull) == ([], [], [])
    assert (deployment.tags, deployment.parameters, deployment.schedules) == ([], {}, [])
    # A deployment's own section left empty inherits, as if it were not written.
    assert deployment.pull is None
    assert deployment.work_pool is not None and deployment.work_pool.job_variables == {}
