"""skyrun deploy's pure parts: which deployments, pull steps prepared for the run, schedules."""

from __future__ import annotations

import pytest

from skyrun.deploy.project import parse_project
from skyrun.deploy.runner import DeployError, Overrides, prepare_pull_steps, select_deployments

OUTPUTS = {"push_code": {"bucket": "b", "folder": "f"}, "build_image": {"image": "r/x:1"}}


def test_pull_steps_get_build_and_push_outputs_and_keep_the_rest() -> None:
    pull = [
        {"pull_from_gcs": {"id": "pull_code", "bucket": "{{ push_code.bucket }}", "folder": "f"}},
        {
            "set_working_directory": {
                "directory": "{{ pull_code.directory }}/{{ $SUBDIR }}",
                "token": "{{ skyrun.variables.token }}",
                "creds": "{{ skyrun.blocks.gcp-credentials.main }}",
            }
        },
    ]
    prepared = prepare_pull_steps(pull, OUTPUTS)
    assert prepared[0]["pull_from_gcs"]["bucket"] == "b"
    assert prepared[1] == pull[1]  # resolved where the run executes


@pytest.mark.parametrize(
    ("steps", "says"),
    [
        (
            [{"set_working_directory": {"directory": "{{ nope.dir }}"}}],
            "pull step 1 (set_working_directory).directory: '{{ nope.dir }}' names no build, push "
            "or earlier pull step (ids: build_image, push_code)",
        ),
        (
            [{"set_working_directory": {"directory": "{{ build_image.tag }}"}}],
            "step 'build_image' has no output 'tag' (its outputs: image)",
        ),
        (
            # A later pull step's id is not known to an earlier one.
            [
                {"set_working_directory": {"directory": "{{ later.directory }}"}},
                {"set_working_directory": {"id": "later", "directory": "/"}},
            ],
            "'{{ later.directory }}' names no build, push or earlier pull step",
        ),
        ([{"set_working_directory": {"d": "{{ skyrun.flow.name }}"}}], "unknown placeholder"),
    ],
)
def test_a_pull_placeholder_nothing_can_resolve_is_an_error(
    steps: list[dict[str, object]], says: str
) -> None:
    with pytest.raises(DeployError) as info:
        prepare_pull_steps(steps, OUTPUTS)
    assert says in str(info.value)


PROJECT = """
name: p
deployments:
- name: a
  entrypoint: f.py:a
- name: b
  entrypoint: f.py:b
"""


def test_deployments_are_chosen_by_name_or_all() -> None:
    project = parse_project(PROJECT)
    assert [d.name for d in select_deployments(project, ["b"], False)] == ["b"]
    assert [d.name for d in select_deployments(project, ["flow/a", "a"], False)] == ["a"]
    assert [d.name for d in select_deployments(project, [], True)] == ["a", "b"]
    with pytest.raises(DeployError, match=r"declares 2 deployments \(a, b\); choose with --name"):
        select_deployments(project, [], False)
    with pytest.raises(DeployError, match=r"no deployment named 'c'; it declares: a, b"):
        select_deployments(project, ["c"], False)
    with pytest.raises(DeployError, match="either --all or --name"):
        select_deployments(project, ["a"], True)
    one = parse_project("name: p\ndeployments:\n- name: only\n  entrypoint: f.py:a\n")
    assert [d.name for d in select_deployments(one, [], False)] == ["only"]


def test_command_line_schedules_replace_the_files() -> None:
    assert Overrides().schedules() is None
    [schedule] = Overrides(cron="0 9 * * *", timezone="Europe/Paris").schedules() or []
    assert schedule.schedule["cron"] == "0 9 * * *"
    assert schedule.schedule["timezone"] == "Europe/Paris"
    with pytest.raises(DeployError, match="--timezone applies to a schedule"):
        Overrides(timezone="UTC").schedules()
    with pytest.raises(DeployError, match="invalid schedule"):
        Overrides(cron="not a cron").schedules()
