"""Recipes: each one written by init_project loads with load_project, with the expected steps."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from skyrun.deploy.init import DEFAULT_IGNORE, InitError, init_project, parse_fields
from skyrun.deploy.project import load_project
from skyrun.deploy.recipes import FIELD_RE, RecipeError, RecipeInput, load_recipe, recipe_names
from skyrun.deploy.steps import BUILTIN_PREFIX, STEP_MODULES

REQUIRED = {
    "local": {},
    "git": {"repository": "https://example.com/team/weather.git", "branch": "main"},
    "gcs": {"bucket": "team-code", "folder": "weather"},
    "docker": {"image_name": "registry.local:5000/team/weather", "tag": "v1"},
    "docker-gcs": {
        "image_name": "registry.local:5000/team/weather",
        "tag": "v1",
        "bucket": "team-code",
        "folder": "weather",
    },
}


def _project_dir(tmp_path: Path) -> Path:
    directory = tmp_path / "weather"
    directory.mkdir()
    return directory


def _steps(steps: list[dict[str, Any]]) -> list[tuple[str, dict[str, Any]]]:
    return [next(iter(step.items())) for step in steps]


def test_the_five_recipes_exist() -> None:
    assert recipe_names() == sorted(REQUIRED)


@pytest.mark.parametrize("name", sorted(REQUIRED))
def test_each_recipe_declares_its_inputs_and_uses_built_in_steps(name: str) -> None:
    recipe = load_recipe(name)
    assert [item.name for item in recipe.inputs if item.required] == list(REQUIRED[name])
    for section in ("build", "push", "pull"):
        for step_name, _ in _steps(recipe.project.get(section, [])):
            assert step_name.startswith(BUILTIN_PREFIX)
            assert step_name.removeprefix(BUILTIN_PREFIX) in STEP_MODULES


@pytest.mark.parametrize("name", sorted(REQUIRED))
def test_each_recipe_writes_a_file_that_loads(name: str, tmp_path: Path) -> None:
    directory = _project_dir(tmp_path)
    written = init_project(directory, name, REQUIRED[name])
    assert written == [directory / "skyrun.yaml", directory / ".skyrunignore"]
    text = (directory / "skyrun.yaml").read_text()
    assert not FIELD_RE.search(text), "a recipe field was left unfilled"
    project = load_project(directory / "skyrun.yaml")
    assert project.name == "weather"
    assert project.deployments == []
    assert "# Add deployments, e.g. as below" in text
    assert (directory / ".skyrunignore").read_text() == DEFAULT_IGNORE


@pytest.mark.parametrize("name", sorted(REQUIRED))
def test_with_an_entrypoint_the_file_holds_a_deployment(name: str, tmp_path: Path) -> None:
    directory = _project_dir(tmp_path)
    fields = {**REQUIRED[name], "entrypoint": "flows/weather.py:fetch_weather", "work_pool": "p"}
    init_project(directory, name, fields)
    project = load_project(directory / "skyrun.yaml")
    (deployment,) = project.deployments
    assert deployment.name == "fetch-weather"
    assert deployment.work_pool is not None and deployment.work_pool.name == "p"
    expected = {"image": "{{ build_image.image }}"} if name.startswith("docker") else {}
    assert deployment.work_pool.job_variables == expected


def test_docker_recipe_builds_pushes_and_pulls_by_step_outputs(tmp_path: Path) -> None:
    directory = _project_dir(tmp_path)
    init_project(directory, "docker", {"image_name": "reg/weather", "tag": "v1"})
    project = load_project(directory / "skyrun.yaml")
    assert _steps(project.build) == [
        (
            "skyrun.deploy.steps.build_docker_image",
            {"id": "build_image", "image_name": "reg/weather", "tag": "v1", "dockerfile": "auto"},
        )
    ]
    assert _steps(project.push) == [
        (
            "skyrun.deploy.steps.push_docker_image",
            {"image_name": "{{ build_image.image_name }}", "tag": "{{ build_image.tag }}"},
        )
    ]
    assert _steps(project.pull) == [
        ("skyrun.deploy.steps.set_working_directory", {"directory": "/opt/skyrun/weather"})
    ]


def test_local_recipe_pulls_into_the_projects_absolute_folder(tmp_path: Path) -> None:
    directory = _project_dir(tmp_path)
    init_project(directory, "local", {})
    project = load_project(directory / "skyrun.yaml")
    assert _steps(project.pull) == [
        ("skyrun.deploy.steps.set_working_directory", {"directory": str(directory.resolve())})
    ]


def test_gcs_recipe_pulls_what_it_pushed(tmp_path: Path) -> None:
    directory = _project_dir(tmp_path)
    init_project(directory, "gcs", {"bucket": "b", "folder": "code/weather"})
    project = load_project(directory / "skyrun.yaml")
    assert _steps(project.push) == [
        (
            "skyrun.deploy.steps.push_to_gcs",
            {"id": "push_code", "bucket": "b", "folder": "code/weather"},
        )
    ]
    assert _steps(project.pull)[0] == (
        "skyrun.deploy.steps.pull_from_gcs",
        {"id": "pull_code", "bucket": "{{ push_code.bucket }}", "folder": "{{ push_code.folder }}"},
    )


def test_values_that_look_like_yaml_stay_text(tmp_path: Path) -> None:
    # A value is put in the data, not pasted into YAML text: quotes, colons and `#` survive.
    directory = _project_dir(tmp_path)
    tricky = "it's: {a} # not a comment"
    init_project(directory, "git", {"repository": tricky, "branch": "[main]", "name": "w x"})
    project = load_project(directory / "skyrun.yaml")
    assert project.name == "w x"
    assert _steps(project.pull)[0][1] == {"id": "clone", "repository": tricky, "branch": "[main]"}


def test_missing_fields_are_all_listed_with_how_to_pass_them(tmp_path: Path) -> None:
    with pytest.raises(RecipeError) as caught:
        init_project(_project_dir(tmp_path), "docker-gcs", {"tag": "v1"})
    message = str(caught.value)
    assert message.startswith("recipe 'docker-gcs' needs image_name (")
    assert "--field image_name=... --field bucket=... --field folder=..." in message
    assert "tag" not in message.split("; pass")[1]
    assert not (tmp_path / "weather" / "skyrun.yaml").exists()


def test_ask_is_called_for_each_missing_field(tmp_path: Path) -> None:
    asked: list[str] = []

    def ask(recipe_input: RecipeInput) -> str:
        asked.append(recipe_input.name)
        return f"answer-{recipe_input.name}"

    directory = _project_dir(tmp_path)
    init_project(directory, "docker", {"tag": "v2"}, ask=ask)
    assert asked == ["image_name"]
    build = _steps(load_project(directory / "skyrun.yaml").build)[0][1]
    assert (build["image_name"], build["tag"]) == ("answer-image_name", "v2")


def test_unknown_recipe_and_unknown_field_list_what_there_is(tmp_path: Path) -> None:
    with pytest.raises(
        RecipeError, match=r"unknown recipe 'dockr'; recipes: docker, docker-gcs, gcs, git, local"
    ):
        init_project(_project_dir(tmp_path), "dockr", {})
    with pytest.raises(RecipeError) as caught:
        init_project(tmp_path / "weather", "gcs", {"bucket": "b", "folder": "f", "buckt": "x"})
    assert str(caught.value) == (
        "recipe 'gcs' has no field 'buckt'; its fields: bucket, folder, name, directory, "
        "entrypoint, work_pool, deployment_name"
    )


def test_an_existing_project_file_is_kept_without_force(tmp_path: Path) -> None:
    directory = _project_dir(tmp_path)
    (directory / "skyrun.yaml").write_text("name: mine\n")
    (directory / ".skyrunignore").write_text("data/\n")
    with pytest.raises(InitError, match=r"skyrun.yaml exists; pass --force to replace it"):
        init_project(directory, "local", {})
    assert (directory / "skyrun.yaml").read_text() == "name: mine\n"
    init_project(directory, "local", {}, force=True)
    assert load_project(directory / "skyrun.yaml").name == "weather"
    assert (directory / ".skyrunignore").read_text() == DEFAULT_IGNORE


def test_an_existing_ignore_file_is_kept(tmp_path: Path) -> None:
    directory = _project_dir(tmp_path)
    (directory / ".skyrunignore").write_text("data/\n")
    assert init_project(directory, "local", {}) == [directory / "skyrun.yaml"]
    assert (directory / ".skyrunignore").read_text() == "data/\n"


def test_a_bad_entrypoint_writes_nothing(tmp_path: Path) -> None:
    directory = _project_dir(tmp_path)
    with pytest.raises(InitError) as caught:
        init_project(directory, "local", {"entrypoint": "flows/w.py", "work_pool": "p"})
    assert "skyrun.yaml:" in str(caught.value) and "is not an entrypoint" in str(caught.value)
    assert list(directory.iterdir()) == []
    with pytest.raises(RecipeError, match="--field entrypoint needs --field work_pool"):
        init_project(directory, "local", {"entrypoint": "flows/w.py:f"})


def test_parse_fields() -> None:
    assert parse_fields(["image_name=reg/app:x", "tag=a=b"]) == {
        "image_name": "reg/app:x",
        "tag": "a=b",
    }
    for bad in (["tag"], ["=x"], ["tag="]):
        with pytest.raises(InitError, match="write --field KEY=VALUE"):
            parse_fields(bad)
    with pytest.raises(InitError, match="--field tag is given twice"):
        parse_fields(["tag=a", "tag=b"])
