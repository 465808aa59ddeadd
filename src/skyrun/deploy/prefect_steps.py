"""Prefect steps and strings in skyrun terms, for `skyrun.deploy.from_prefect`."""

from __future__ import annotations

import re
from typing import Any

from skyrun.deploy.steps import BUILTIN_PREFIX, STEP_MODULES

__all__ = ["WORKING_DIRECTORY", "PrefectStepConverter"]

PREFECT_STEP_PACKAGES = ("prefect.", "prefect_docker.", "prefect_gcp.")
RENAMED_STEPS = {"git_clone_project": "git_clone"}
# The arguments each built-in step takes (besides `id` and `requires`).
STEP_ARGUMENTS = {
    "run_shell_script": {"script", "directory", "env", "stream_output", "expand_env_vars"},
    "set_working_directory": {"directory"},
    "pip_install_requirements": {"requirements_file", "directory", "stream_output"},
    "git_clone": {"repository", "branch", "commit", "access_token", "directory"},
    "build_docker_image": {
        "image_name",
        "tag",
        "dockerfile",
        "base_image",
        "platform",
        "build_args",
        "builder",
        "path",
    },
    "push_docker_image": {"image_name", "tag", "credentials", "tls_verify", "builder"},
    "push_to_gcs": {"bucket", "folder", "credentials", "project"},
    "pull_from_gcs": {"bucket", "folder", "credentials", "project", "directory"},
}
RENAMED_ARGUMENTS = {("build_docker_image", "buildargs"): "build_args"}
WORKING_DIRECTORY = "[WORKING_DIRECTORY]"
_PREFECT_REFERENCE = re.compile(r"(\{\{\s*)prefect\.(variables|blocks)\.")
_OTHER_PREFECT_REFERENCE = re.compile(r"\{\{\s*prefect\.[^}]*\}\}")
_REQUIREMENT_NAME = re.compile(r"^\s*([A-Za-z0-9_.\-]+)")


def _child(where: str, key: Any) -> str:
    # A step's dotted name would drown the path: `pull[0] (set_working_directory).directory`.
    if isinstance(key, str) and "." in key:
        return f"{where} ({key.rpartition('.')[2]})"
    return f"{where}.{key}" if where else str(key)


class PrefectStepConverter:
    """Converts strings and steps, collecting notes on what changed or could not map."""

    def __init__(self, project_name: str) -> None:
        self.project_name = project_name
        self.notes: list[str] = []
        self._told: set[str] = set()

    def note(self, text: str, once: str | None = None) -> None:
        if once is not None:
            if once in self._told:
                return
            self._told.add(once)
        self.notes.append(text)

    # -- strings everywhere ---------------------------------------------------------

    def text(self, value: str, where: str) -> str:
        if WORKING_DIRECTORY in value:
            value = value.replace(WORKING_DIRECTORY, self.project_name)
            self.note(
                f"{WORKING_DIRECTORY} (the guide's placeholder) replaced by the folder's "
                f"name {self.project_name!r}",
                once="working-directory",
            )
        if "/opt/prefect/" in value:
            value = value.replace("/opt/prefect/", "/opt/skyrun/")
            self.note(
                f"{where}: /opt/prefect/ became /opt/skyrun/ (where skyrun's images hold "
                "the project)"
            )
        converted = _PREFECT_REFERENCE.sub(r"\1skyrun.\2.", value)
        if converted != value:
            self.note(f"{where}: {{{{ prefect.* }}}} references became {{{{ skyrun.* }}}}")
        for match in _OTHER_PREFECT_REFERENCE.finditer(converted):
            self.note(f"{where}: {match.group(0)} has no skyrun equivalent; replace it")
        return converted

    def values(self, value: Any, where: str) -> Any:
        """`value` with its strings converted; new containers, so no YAML alias survives."""
        if isinstance(value, str):
            return self.text(value, where)
        if isinstance(value, dict):
            return {key: self.values(item, _child(where, key)) for key, item in value.items()}
        if isinstance(value, list):
            return [self.values(item, f"{where}[{index}]") for index, item in enumerate(value)]
        return value

    # -- steps ----------------------------------------------------------------------

    def requires(self, requires: Any, where: str) -> list[str] | None:
        items = requires.replace(",", " ").split() if isinstance(requires, str) else requires
        if not isinstance(items, list):
            return requires
        kept = []
        for item in items:
            match = _REQUIREMENT_NAME.match(str(item))
            name = match.group(1).lower().replace("_", "-") if match else ""
            if name == "prefect" or name.startswith("prefect-"):
                self.note(f"{where}: requires {item} dropped (skyrun's steps are built in)")
            else:
                kept.append(str(item))
        return kept or None

    def step(self, step: Any, where: str) -> Any:
        if not isinstance(step, dict) or len(step) != 1:
            self.note(f"{where}: not a one-key step mapping; kept as written, fix it by hand")
            return step
        ((name, arguments),) = step.items()
        if not isinstance(arguments, dict | None):
            self.note(f"{where}: the arguments of {name} are not a mapping; kept as written")
            return step
        arguments = dict(arguments or {})
        short = str(name).rpartition(".")[2]
        short = RENAMED_STEPS.get(short, short)
        if not str(name).startswith(PREFECT_STEP_PACKAGES) or short not in STEP_MODULES:
            self.note(
                f"{where}: step {name} has no skyrun equivalent; kept as written, so "
                "`skyrun deploy` stops there: replace it with a skyrun step "
                f"({', '.join(sorted(STEP_MODULES))}) or a custom step (an importable function)"
            )
            return {name: arguments}
        converted: dict[str, Any] = {}
        for key, value in arguments.items():
            key = RENAMED_ARGUMENTS.get((short, key), key)
            if key == "requires":
                value = self.requires(value, where)
                if value is not None:
                    converted[key] = value
            elif short == "git_clone" and key == "credentials":
                self._git_credentials(value, converted, where)
            elif key == "id" or key in STEP_ARGUMENTS[short]:
                converted[key] = value
            else:
                self.note(f"{where}: argument {key} dropped: skyrun's {short} does not take it")
        return {f"{BUILTIN_PREFIX}{short}": converted}

    def _git_credentials(self, value: Any, converted: dict[str, Any], where: str) -> None:
        # Prefect passes a credentials block; skyrun's git_clone takes the token itself.
        if isinstance(value, str) and value.strip().startswith("{{") and value.endswith("}}"):
            converted["access_token"] = value.strip().removesuffix("}}").rstrip() + ".token }}"
            self.note(f"{where}: credentials became access_token (the block's `token` field)")
        else:
            self.note(f"{where}: credentials dropped; give access_token instead")

    def steps(self, steps: Any, where: str) -> Any:
        if steps is None:
            return []
        if not isinstance(steps, list):
            self.note(f"{where}: not a list of steps; kept as written, fix it by hand")
            return steps
        return [self.step(step, f"{where}[{index}]") for index, step in enumerate(steps)]
