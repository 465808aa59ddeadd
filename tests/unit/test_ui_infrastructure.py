"""What a run page says a run's infrastructure id names."""

from __future__ import annotations

from skyrun.server.ui.infrastructure import describe


def test_a_cloud_run_execution_is_named_by_its_parts() -> None:
    name = "projects/my-proj/locations/europe-west1/jobs/fetch-weather-a1b2/executions/fetch-weather-a1b2-x9k"
    assert describe(name) == [
        ("Cloud Run job", "fetch-weather-a1b2"),
        ("Cloud Run execution", "fetch-weather-a1b2-x9k"),
        ("Project", "my-proj"),
        ("Region", "europe-west1"),
    ]


def test_a_process_id_and_anything_else() -> None:
    assert describe("4242") == [("Process id", "4242")]
    assert describe("projects/p/locations/r/jobs/j") == []  # not an execution: shown raw only
    assert describe(None) == [] and describe("") == []
