"""`skyrun init --from prefect.yaml`: a Prefect project file converted into a `skyrun.yaml`.

What maps is mapped, and every change that is not a plain rename is told in a note:

* steps `prefect.deployments.steps.X`, `prefect_docker.deployments.steps.X` and
  `prefect_gcp.deployments.steps.X` (and their longer module paths) become
  `skyrun.deploy.steps.X` when skyrun has a step X; arguments skyrun's step does not take are
  dropped. A step skyrun does not have is **kept as written**, so that `skyrun deploy` stops
  at it naming it, instead of deploying something that silently does less;
* `requires:` naming Prefect packages is dropped (skyrun's steps are built in);
* `prefect-version` is replaced by `skyrun-version`; `/opt/prefect/` paths become
  `/opt/skyrun/`; `{{ prefect.variables.X }}` / `{{ prefect.blocks.X.Y }}` become their
  `skyrun.*` forms; `[WORKING_DIRECTORY]` (the guide's placeholder) becomes the folder's name;
* a deployment's `schedule:` becomes `schedules:`; `flow_name: null` goes (skyrun names the
  flow from the entrypoint); keys skyrun has no use for are dropped and listed.

YAML comments are not carried over; anchors are expanded.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from skyrun._version import __version__
from skyrun.deploy.init import InitError, check_free, dump_yaml, header, write_project
from skyrun.deploy.prefect_steps import WORKING_DIRECTORY, PrefectStepConverter
from skyrun.deploy.project import PROJECT_FILE_NAME, ProjectFileError, parse_project
from skyrun.deploy.yaml_lines import YAMLProblem, load_with_lines

__all__ = ["Conversion", "PrefectConversionError", "convert_prefect_yaml", "init_from_prefect"]

DEPLOYMENT_KEYS = ("name", "version", "tags", "description", "entrypoint", "parameters")
DEPLOYMENT_TAIL_KEYS = ("concurrency_limit", "paused", "build", "push", "pull")
SCHEDULE_KEYS = {"cron", "interval", "anchor_date", "rrule", "timezone", "day_or", "active"}
WORK_POOL_KEYS = ("name", "work_queue_name", "job_variables")


class PrefectConversionError(ValueError):
    """The text is not a Prefect project file at all (not YAML, not a mapping)."""


@dataclass
class Conversion:
    """The converted project file's text and what the conversion changed or could not map."""

    text: str
    notes: list[str] = field(default_factory=list)


class _Converter(PrefectStepConverter):
    """Converts a whole file: the steps' conversion plus deployments."""

    # -- deployments ----------------------------------------------------------------

    def schedule(self, schedule: dict[str, Any], where: str) -> dict[str, Any]:
        for key in sorted(set(schedule) - SCHEDULE_KEYS):
            self.note(f"{where}: {key} dropped: skyrun schedules have no such option")
        return {key: value for key, value in schedule.items() if key in SCHEDULE_KEYS}

    def schedules(self, deployment: dict[str, Any], where: str) -> list[dict[str, Any]]:
        found: list[Any] = list(deployment.get("schedules") or [])
        single = deployment.get("schedule")
        if single:
            found.insert(0, single)
            self.note(f"{where}: schedule became an entry of schedules")
        schedules = [
            self.schedule(item, f"{where}.schedules[{index}]")
            for index, item in enumerate(found)
            if isinstance(item, dict) and item
        ]
        active = deployment.get("is_schedule_active")
        if active is not None:
            for item in schedules:
                item.setdefault("active", bool(active))
        return schedules

    def work_pool(self, pool: Any, where: str) -> dict[str, Any] | None:
        if not isinstance(pool, dict):
            return None
        for key in sorted(set(pool) - set(WORK_POOL_KEYS)):
            self.note(f"{where}.work_pool: {key} dropped: not a work_pool key in skyrun")
        if not pool.get("name"):
            self.note(
                f"{where}.work_pool has no name, so it was left out (with its job_variables "
                f"{pool.get('job_variables') or {}}); add one, or pass --pool to skyrun deploy"
            )
            return None
        return {key: pool[key] for key in WORK_POOL_KEYS if pool.get(key) not in (None, {})}

    def deployment(self, deployment: Any, where: str) -> Any:
        if not isinstance(deployment, dict):
            self.note(f"{where}: not a mapping; kept as written, fix it by hand")
            return deployment
        converted = {
            key: deployment[key] for key in DEPLOYMENT_KEYS if deployment.get(key) is not None
        }
        schedules = self.schedules(deployment, where)
        if schedules:
            converted["schedules"] = schedules
        pool = self.work_pool(deployment.get("work_pool"), where)
        if pool is not None:
            converted["work_pool"] = pool
        limit = deployment.get("concurrency_limit")
        if isinstance(limit, dict):
            self.note(f"{where}: concurrency_limit became its limit, {limit.get('limit')}")
            limit = limit.get("limit")
        for key in DEPLOYMENT_TAIL_KEYS:
            value = limit if key == "concurrency_limit" else deployment.get(key)
            if value is not None:
                converted[key] = (
                    self.steps(value, f"{where}.{key}")
                    if key in ("build", "push", "pull")
                    else value
                )
        if deployment.get("flow_name") is not None:
            self.note(f"{where}: flow_name dropped: skyrun names the flow from its entrypoint")
        handled = {*DEPLOYMENT_KEYS, *DEPLOYMENT_TAIL_KEYS, "schedule", "schedules"}
        handled |= {"work_pool", "flow_name", "is_schedule_active"}
        for key in deployment:
            if key not in handled:
                self.note(f"{where}: {key} dropped: skyrun deployments have no such key")
        return converted


def convert_prefect_yaml(text: str, project_name: str, source: str = "prefect.yaml") -> Conversion:
    """Convert the text of a Prefect project file into a `skyrun.yaml`.

    Args:
        text: The `prefect.yaml` text.
        project_name: The name to use when the file has none, or the guide's placeholder.
        source: The file's name, for messages.

    Returns:
        The new file's text and the notes (what was translated, dropped or not mapped). When
        the result does not validate yet, the last note says what to fix.

    Raises:
        PrefectConversionError: The text is not YAML, or not a mapping.
    """
    try:
        data = load_with_lines(text).data
    except YAMLProblem as exc:
        raise PrefectConversionError(f"{source}:{exc.line}: {exc.message}") from None
    if not isinstance(data, dict):
        raise PrefectConversionError(f"{source}: not a Prefect project file (not a mapping)")
    try:
        return _convert(data, project_name, source)
    except RecursionError:
        raise PrefectConversionError(
            f"{source}: an anchor contains itself (a recursive alias); skyrun.yaml cannot hold it"
        ) from None


def _convert(data: dict[str, Any], project_name: str, source: str) -> Conversion:
    converter = _Converter(project_name)
    name = data.get("name")
    if name == [WORKING_DIRECTORY.strip("[]")]:
        # YAML reads the guide's `name: [WORKING_DIRECTORY]` as a list of one string.
        data["name"] = name = WORKING_DIRECTORY
    data = converter.values(data, "")
    name = data.get("name")
    if not isinstance(name, str) or not name.strip():
        name = project_name
        converter.note(f"name: {data.get('name')!r} is not a name; used the folder's, {name!r}")
    result: dict[str, Any] = {"name": name, "skyrun-version": __version__}
    if "prefect-version" in data:
        converter.note(f"prefect-version dropped; skyrun-version is {__version__}")
    for section in ("build", "push", "pull"):
        result[section] = converter.steps(data.get(section), section)
    result["deployments"] = [
        converter.deployment(item, f"deployments[{index}]")
        for index, item in enumerate(data.get("deployments") or [])
    ]
    if data.get("definitions") is not None:
        result["definitions"] = data["definitions"]
    known = {"name", "prefect-version", "build", "push", "pull", "deployments", "definitions"}
    for key in data:
        if key not in known:
            converter.note(f"{key} dropped: a skyrun.yaml has no such key")
    origin = f"Converted from {source} by `skyrun init --from`; its comments were not kept."
    converted = header(origin) + "\n" + dump_yaml(result)
    try:
        parse_project(converted, PROJECT_FILE_NAME)
    except ProjectFileError as exc:
        converter.note(f"the converted file does not load yet; fix before deploying:\n{exc}")
    return Conversion(text=converted, notes=converter.notes)


def init_from_prefect(
    directory: Path, source: Path, force: bool = False
) -> tuple[list[Path], list[str]]:
    """Write `skyrun.yaml` (and `.skyrunignore`) in `directory` converted from `source`.

    Returns:
        The files written and the conversion's notes.

    Raises:
        InitError: `skyrun.yaml` exists and `force` is not set, or `source` cannot be read.
        PrefectConversionError: `source` is not a Prefect project file.
    """
    check_free(directory, force)
    try:
        text = source.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InitError(f"{source}: cannot be read: {exc}") from None
    conversion = convert_prefect_yaml(text, directory.resolve().name, source.name)
    return write_project(directory, conversion.text, force), conversion.notes
