"""The project file, `skyrun.yaml`: its model and `load_project`, which names lines in errors.

    name: weather
    skyrun-version: 0.1.0
    build: [...]            # steps run once per `skyrun deploy`
    push: [...]
    pull: [...]             # steps stored on each deployment, run where its flow runs
    definitions: {...}      # anything, for YAML anchors (&x, *x, <<: *x)
    deployments:
    - name: daily
      entrypoint: flows/weather.py:fetch_weather
      schedules: [{cron: "0 9 * * *", timezone: Europe/Paris}]
      work_pool: {name: cloud-run, job_variables: {image: "{{ build_image.image }}"}}

Steps are validated for shape only (a one-key mapping of a name to its arguments); which
names exist is the step runner's business, when it runs them.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    field_validator,
    model_validator,
)

from skyrun.deploy.project_errors import ProjectFileError, validation_problems
from skyrun.deploy.yaml_lines import YAMLProblem, load_with_lines
from skyrun.schedules import accept_schedule
from skyrun.schemas.deployments import DeploymentScheduleCreate
from skyrun.schemas.work_pools import Limit

__all__ = [
    "PROJECT_FILE_NAME",
    "DeploymentSpec",
    "ProjectFile",
    "ProjectFileError",
    "ScheduleSpec",
    "WorkPoolSpec",
    "load_project",
    "parse_project",
]

PROJECT_FILE_NAME = "skyrun.yaml"
Section = Literal["build", "push", "pull"]


def _check_step(step: Any) -> dict[str, Any]:
    if not isinstance(step, Mapping) or len(step) != 1:
        shown = (
            f"a mapping with keys {', '.join(map(str, step))}"
            if isinstance(step, Mapping)
            else repr(step)
        )
        raise ValueError(
            "a step is a mapping with one key, the step's name, holding its arguments "
            f"(e.g. `- skyrun.deploy.steps.run_shell_script: {{script: make}}`); got {shown}"
        )
    ((name, arguments),) = step.items()
    if not isinstance(name, str) or not name.strip():
        raise ValueError(f"a step's name must be text, got {name!r}")
    if arguments is None:
        arguments = {}
    if not isinstance(arguments, Mapping):
        raise ValueError(
            f"step {name}: its arguments must be a mapping of argument names to values, "
            f"got {arguments!r}"
        )
    step_id = arguments.get("id")
    if step_id is not None and not isinstance(step_id, str):
        raise ValueError(f"step {name}: `id` must be text, got {step_id!r}")
    requires = arguments.get("requires")
    if requires is not None and not (
        isinstance(requires, str)
        or (isinstance(requires, list) and all(isinstance(item, str) for item in requires))
    ):
        raise ValueError(
            f"step {name}: `requires` must be a requirement ('pkg>=1') or a list of them, "
            f"got {requires!r}"
        )
    return {name: dict(arguments)}


def _number_as_text(value: Any) -> Any:
    # `version: 1.2` is a float to YAML, but a version is text.
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    return value


Step = Annotated[dict[str, Any], BeforeValidator(_check_step)]
Steps = list[Step]
Version = Annotated[str, BeforeValidator(_number_as_text)]


def _empty_list(value: Any) -> Any:
    # `build:` with nothing after it is None to YAML; it means no steps.
    return [] if value is None else value


def _empty_mapping(value: Any) -> Any:
    return {} if value is None else value


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class WorkPoolSpec(_Strict):
    """Where a deployment's runs go: a work pool, optionally a queue, and job variables."""

    name: str = Field(min_length=1)
    work_queue_name: str | None = None
    job_variables: dict[str, Any] = Field(default_factory=dict)

    _none_is_empty = field_validator("job_variables", mode="before")(_empty_mapping)


class ScheduleSpec(_Strict):
    """One schedule: exactly one of cron, interval (seconds) or rrule, and its options."""

    cron: str | None = None
    interval: float | None = None
    anchor_date: datetime | None = None
    rrule: str | None = None
    timezone: str | None = None
    day_or: bool | None = None
    active: bool = True

    @model_validator(mode="after")
    def _computable(self) -> ScheduleSpec:
        try:
            accept_schedule(self.schedule())
        except ValidationError as exc:
            raise ValueError(
                "; ".join(
                    f"{error['loc'][-1]}: {str(error['msg']).removeprefix('Value error, ')}"
                    if error["loc"]
                    else str(error["msg"])
                    for error in exc.errors()
                )
            ) from None
        return self

    def schedule(self) -> dict[str, Any]:
        """The schedule as the API takes it (`DeploymentScheduleCreate.schedule`)."""
        return self.model_dump(mode="json", exclude={"active"}, exclude_none=True)

    def schedule_create(self) -> DeploymentScheduleCreate:
        """This schedule as a deployment's schedule to register."""
        return DeploymentScheduleCreate(schedule=self.schedule(), active=self.active)


class DeploymentSpec(_Strict):
    """One deployment of the project; `build`/`push`/`pull` None means the project's own."""

    name: str = Field(min_length=1)
    version: Version | None = None
    tags: list[str] = Field(default_factory=list)
    description: str | None = None
    entrypoint: str
    parameters: dict[str, Any] = Field(default_factory=dict)
    schedules: list[ScheduleSpec] = Field(default_factory=list)
    work_pool: WorkPoolSpec | None = None
    # As the API takes it: 0 holds every run, None is no limit.
    concurrency_limit: Limit | None = None
    paused: bool = False
    build: Steps | None = None
    push: Steps | None = None
    pull: Steps | None = None

    _none_is_empty = field_validator("tags", "schedules", mode="before")(_empty_list)
    _none_is_no_parameters = field_validator("parameters", mode="before")(_empty_mapping)

    @field_validator("entrypoint")
    @classmethod
    def _entrypoint(cls, value: str) -> str:
        path, sep, function = value.rpartition(":")
        if not sep or not path or not function.isidentifier():
            raise ValueError(
                f"{value!r} is not an entrypoint; write 'path/to/file.py:function' or "
                "'package.module:function'"
            )
        return value


class ProjectFile(_Strict):
    """A whole `skyrun.yaml`."""

    name: str = Field(min_length=1)
    skyrun_version: Version | None = Field(default=None, alias="skyrun-version")
    build: Steps = Field(default_factory=list)
    push: Steps = Field(default_factory=list)
    pull: Steps = Field(default_factory=list)
    deployments: list[DeploymentSpec] = Field(default_factory=list)
    definitions: Any = None
    _source: str = PrivateAttr(default=PROJECT_FILE_NAME)

    _none_is_empty = field_validator("build", "push", "pull", "deployments", mode="before")(
        _empty_list
    )

    @field_validator("deployments")
    @classmethod
    def _unique_names(cls, deployments: list[DeploymentSpec]) -> list[DeploymentSpec]:
        first: dict[str, int] = {}
        for index, deployment in enumerate(deployments):
            if deployment.name in first:
                raise ValueError(
                    f"deployments[{index}] is named {deployment.name!r} like "
                    f"deployments[{first[deployment.name]}]; give each deployment its own name"
                )
            first[deployment.name] = index
        return deployments

    @property
    def source(self) -> str:
        """The file this project was read from, as messages show it."""
        return self._source

    def deployment(self, name: str) -> DeploymentSpec:
        """The deployment called `name`.

        Raises:
            ProjectFileError: There is none; the message lists the ones there are.
        """
        for deployment in self.deployments:
            if deployment.name == name:
                return deployment
        names = ", ".join(repr(deployment.name) for deployment in self.deployments)
        has = f"it has {names}" if names else "it has none yet: add one under `deployments:`"
        raise ProjectFileError(f"{self._source}: no deployment named {name!r}; {has}")

    def steps(self, deployment: DeploymentSpec, section: Section) -> list[dict[str, Any]]:
        """The `section` steps for `deployment`: its own if it sets them, else the project's."""
        own: list[dict[str, Any]] | None = getattr(deployment, section)
        return own if own is not None else list(getattr(self, section))


def _shown_path(path: Path) -> str:
    # Relative to the working directory when inside it: that is what the user typed.
    try:
        return os.path.relpath(path) if path.resolve().is_relative_to(Path.cwd()) else str(path)
    except (OSError, ValueError):
        return str(path)


def parse_project(text: str, source: str = PROJECT_FILE_NAME) -> ProjectFile:
    """Validate project-file text; `source` is the file name messages start with.

    Raises:
        ProjectFileError: Every problem found, one per line, each as
            "FILE:LINE: KEY: what is wrong; what is allowed".
    """
    try:
        loaded = load_with_lines(text)
    except YAMLProblem as exc:
        raise ProjectFileError(f"{source}:{exc.line}: {exc.message}") from None
    if loaded.data is None:
        raise ProjectFileError(
            f"{source}:1: the file is empty; a project file needs at least `name:` "
            "(`skyrun init` writes one)"
        )
    try:
        project = ProjectFile.model_validate(loaded.data)
    except ValidationError as exc:
        problems = validation_problems(exc, loaded, ProjectFile)
        raise ProjectFileError(
            "\n".join(f"{source}:{line}: {message}" for line, message in problems)
        ) from None
    project._source = source
    return project


def load_project(path: Path) -> ProjectFile:
    """Read and validate a project file.

    Args:
        path: The `skyrun.yaml` to read, or the folder that holds it.

    Raises:
        ProjectFileError: The file cannot be read, is not valid YAML, or does not match the
            model; the message names the file, the line and the key.
    """
    if path.is_dir():
        path = path / PROJECT_FILE_NAME
    shown = _shown_path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ProjectFileError(
            f"{shown}: no such file; `skyrun init` writes one (or give the path of yours)"
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ProjectFileError(f"{shown}: cannot be read: {exc}") from None
    return parse_project(text, shown)
