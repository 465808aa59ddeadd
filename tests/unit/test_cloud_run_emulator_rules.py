"""The Cloud Run emulator's pure rules: jobs.run overrides and the order faults apply in."""

from __future__ import annotations

import pytest
from google.cloud import run_v2

from skyrun.integrations.gcp.emulator.faults import FaultBook, parse_fault
from skyrun.integrations.gcp.emulator.state import ApiError
from skyrun.integrations.gcp.emulator.templates import apply_overrides


def two_containers() -> run_v2.ExecutionTemplate:
    return run_v2.ExecutionTemplate(
        task_count=1,
        template={
            "containers": [
                {"name": "main", "image": "a", "args": ["x"], "env": [{"name": "A", "value": "1"}]},
                {"name": "side", "image": "b", "args": ["y"]},
            ]
        },
    )


def test_overrides_go_to_the_named_container_and_merge_env() -> None:
    template = two_containers()
    overrides = run_v2.RunJobRequest.Overrides(
        container_overrides=[
            {"name": "main", "env": [{"name": "A", "value": "2"}, {"name": "B", "value": "3"}]},
            {"name": "side", "clear_args": True},
        ],
        task_count=4,
        timeout="90s",
    )
    apply_overrides(template, overrides)
    main, side = template.template.containers
    assert list(main.args) == ["x"]
    assert {v.name: v.value for v in main.env} == {"A": "2", "B": "3"}
    assert list(side.args) == []
    assert template.task_count == 4
    assert template.template.timeout.total_seconds() == 90


def test_an_override_must_name_a_container_when_there_are_several() -> None:
    for name in ("", "missing"):
        overrides = run_v2.RunJobRequest.Overrides(
            container_overrides=[{"name": name, "args": ["z"]}]
        )
        with pytest.raises(ApiError) as raised:
            apply_overrides(two_containers(), overrides)
        assert (raised.value.code, raised.value.status) == (400, "INVALID_ARGUMENT")


def test_faults_apply_in_the_order_posted_and_count_down() -> None:
    book = FaultBook()
    book.add(parse_fault({"method": "jobs.create", "count": 2, "status": 429}))
    book.add(parse_fault({"method": "*", "drop": True}))
    book.add(parse_fault({"never_start": True}))
    seen = []
    for method in ("jobs.get", "jobs.create", "jobs.create", "jobs.create"):
        fault = book.on_call(method)
        seen.append(fault and (fault.status, fault.drop))
    assert seen == [(None, "after"), (429, None), (429, None), None]
    assert book.calls == {"jobs.get": 1, "jobs.create": 3}
    assert book.never_start() and not book.never_start()


def test_a_fault_with_a_project_meets_only_that_projects_calls() -> None:
    book = FaultBook()
    book.add(parse_fault({"method": "jobs.create", "status": 503, "project": "mine"}))
    book.add(parse_fault({"never_start": True, "project": "mine"}))
    assert book.on_call("jobs.create", "theirs") is None
    assert not book.never_start("theirs")
    fault = book.on_call("jobs.create", "mine")
    assert fault is not None and fault.status == 503
    assert book.never_start("mine")
    with pytest.raises(ValueError, match="project"):
        parse_fault({"method": "jobs.get", "status": 500, "project": 3})
