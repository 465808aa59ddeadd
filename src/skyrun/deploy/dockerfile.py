"""The Dockerfile skyrun writes for `build_docker_image` with `dockerfile: auto`, and its context.

The image it describes has this skyrun installed, the project's `requirements.txt`
installed, and the project's files (less those `.skyrunignore` ignores) in
`/opt/skyrun/<name>`, its working directory.

skyrun is installed from a wheel placed in the build context, built from the skyrun
running the deploy (`pip wheel --no-deps` of its source checkout, or the wheel it was
installed from): the image may be unable to reach where this skyrun came from, and the
same code then runs on both sides. Only when neither is at hand does the image ask its
package index for `skyrun==VERSION`. skyrun's own dependencies always come from the index.

The build context is a fresh directory holding only the kept files, so an ignored file
never reaches the builder, let alone a layer.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

import yaml

from skyrun.deploy.ignore import project_files
from skyrun.deploy.steps.errors import StepError

# Where, inside the context, the skyrun wheel and the project's files go.
DIST_DIR = ".skyrun-dist"
PROJECT_DIR = "project"
IMAGE_ROOT = "/opt/skyrun"
# Passed to the build by build_docker_image so pip inside it uses this machine's index.
PIP_BUILD_ARGS = ("PIP_INDEX_URL", "PIP_EXTRA_INDEX_URL", "PIP_TRUSTED_HOST")


def default_base_image() -> str:
    """`python:<major>.<minor>-slim` of the Python running now, so the image runs the same."""
    return f"python:{sys.version_info.major}.{sys.version_info.minor}-slim"


def image_directory(project_name: str) -> str:
    """Where the project's files live in the image (`/opt/skyrun/<name>`)."""
    return f"{IMAGE_ROOT}/{safe_name(project_name)}"


def safe_name(name: str) -> str:
    """`name` reduced to characters safe in a path of the image (others become `-`)."""
    cleaned = re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip("-.")
    return cleaned or "project"


def auto_dockerfile(
    project_name: str,
    base_image: str | None = None,
    requirements: bool = False,
    skyrun_requirement: str = "skyrun",
) -> str:
    """The Dockerfile text for a project.

    Args:
        project_name: The project's name; its files go to `/opt/skyrun/<name>`.
        base_image: The image to start from; default `python:<major>.<minor>-slim` of
            the running Python. It must have `python` with `pip` on its PATH.
        requirements: Whether the context has `project/requirements.txt` to install.
        skyrun_requirement: How to install skyrun: a wheel's file name (`*.whl`), which
            the context holds in `.skyrun-dist/`, or a requirement such as `skyrun==0.1.0`.

    Returns:
        The Dockerfile, for a context laid out by `write_build_context`.
    """
    lines = [
        "# Written by skyrun for build_docker_image with `dockerfile: auto`;",
        "# name a Dockerfile of your own in that step to build something else.",
        f"FROM {base_image or default_base_image()}",
        "# The package index pip uses in this build (build arguments, not kept in the image).",
        *(f"ARG {name}" for name in PIP_BUILD_ARGS),
        "ENV PYTHONUNBUFFERED=1",
    ]
    if skyrun_requirement.endswith(".whl"):
        lines += [
            f"COPY {DIST_DIR}/ /tmp/skyrun-dist/",
            "RUN python -m pip install --no-cache-dir "
            f"/tmp/skyrun-dist/{skyrun_requirement} && rm -rf /tmp/skyrun-dist",
        ]
    else:
        lines.append(f"RUN python -m pip install --no-cache-dir {json.dumps(skyrun_requirement)}")
    lines.append(f"WORKDIR {image_directory(project_name)}")
    if requirements:
        # Installed before the project is copied, so editing code keeps this layer cached.
        lines += [
            f"COPY {PROJECT_DIR}/requirements.txt ./requirements.txt",
            "RUN python -m pip install --no-cache-dir -r requirements.txt",
        ]
    lines.append(f"COPY {PROJECT_DIR}/ ./")
    return "\n".join(lines) + "\n"


def project_name(directory: Path) -> str:
    """The `name` in `directory/skyrun.yaml`, else the directory's own name."""
    project_file = directory / "skyrun.yaml"
    try:
        data = yaml.safe_load(project_file.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError, UnicodeDecodeError):
        data = None
    if isinstance(data, dict) and isinstance(data.get("name"), str) and data["name"].strip():
        return data["name"].strip()
    return directory.resolve().name


def skyrun_source(direct_url: Mapping[str, Any] | None) -> tuple[str, str]:
    """Where the image's skyrun comes from, given skyrun's `direct_url.json` (PEP 610).

    Returns:
        `("checkout", path)`: installed from a local directory (editable or not), to build
        a wheel of; `("wheel", path)`: installed from a wheel file still on disk, to copy;
        `("index", "")`: anything else (an index, or a source gone since).
    """
    url = urlparse(str((direct_url or {}).get("url", "")))
    if url.scheme != "file":
        return "index", ""
    path = unquote(url.path)
    if path.endswith(".whl") and Path(path).is_file():
        return "wheel", path
    if "dir_info" in (direct_url or {}) and Path(path).is_dir():
        return "checkout", path
    return "index", ""


def skyrun_wheel(target: Path) -> str:
    """Put a wheel of the running skyrun into `target`; return what the image should install.

    Returns:
        The wheel's file name, or `skyrun==VERSION` when skyrun was installed from an
        index (no source or wheel here to build from).

    Raises:
        StepError: Building the wheel from the source checkout failed.
    """
    target.mkdir(parents=True, exist_ok=True)
    distribution = importlib.metadata.distribution("skyrun")
    text = distribution.read_text("direct_url.json")
    kind, source = skyrun_source(json.loads(text) if text else None)
    if kind == "index":
        return f"skyrun=={distribution.version}"
    if kind == "wheel":
        shutil.copy2(source, target)
        return Path(source).name
    command = [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(target), source]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    wheels = sorted(target.glob("skyrun-*.whl"))
    if result.returncode != 0 or not wheels:
        tail = "\n".join((result.stdout + result.stderr).strip().splitlines()[-10:])
        raise StepError(
            f"cannot build a wheel of skyrun from {source} for the image "
            f"(`{' '.join(command)}` exited with {result.returncode}):\n{tail}"
        )
    return wheels[-1].name


def write_build_context(
    project: Path, context: Path, base_image: str | None, name: str | None = None
) -> Path:
    """Lay out `context` for the auto Dockerfile: kept project files, skyrun's wheel, Dockerfile.

    Args:
        project: The project's root (its `.skyrunignore` applies).
        context: An empty directory to fill.
        base_image: As for `auto_dockerfile`.
        name: The project's name; default `project_name(project)`.

    Returns:
        The Dockerfile written in `context`.

    Raises:
        StepError: `.skyrunignore` is invalid, a file cannot be copied, or skyrun's wheel
            cannot be built.
    """
    try:
        files = project_files(project)
    except ValueError as exc:
        raise StepError(str(exc)) from exc
    destination = context / PROJECT_DIR
    destination.mkdir(parents=True)
    for relative in files:
        target = destination / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            # Links stay links, as they are in the project.
            shutil.copy2(project / relative, target, follow_symlinks=False)
        except OSError as exc:
            raise StepError(
                f"cannot copy {project / relative} into the build context: {exc}; "
                "add it to .skyrunignore if the image does not need it"
            ) from exc
    requirement = skyrun_wheel(context / DIST_DIR)
    dockerfile = context / "Dockerfile"
    dockerfile.write_text(
        auto_dockerfile(
            name or project_name(project),
            base_image,
            requirements=(destination / "requirements.txt").is_file(),
            skyrun_requirement=requirement,
        ),
        encoding="utf-8",
    )
    return dockerfile


def pip_index_build_args() -> dict[str, str]:
    """This machine's pip index settings, as build arguments for the auto Dockerfile.

    Read from `pip config list` of this Python's pip and the `PIP_*` variables (which
    win, as they do for pip). Local (`file:`) indexes are left out (the build cannot
    read them), and so is any URL with a password in it: build arguments are visible in
    the image's history. A private index needing a password is for a Dockerfile of your
    own (e.g. a build secret).
    """
    try:
        result = subprocess.run(
            [sys.executable, "-m", "pip", "config", "list"],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        listed = result.stdout if result.returncode == 0 else ""
    except (OSError, subprocess.TimeoutExpired):
        listed = ""
    options = {"index-url": "PIP_INDEX_URL", "extra-index-url": "PIP_EXTRA_INDEX_URL"}
    options["trusted-host"] = "PIP_TRUSTED_HOST"
    found: dict[str, str] = {}
    for line in listed.splitlines():
        key, _, value = line.partition("=")
        option = key.rsplit(".", 1)[-1]
        if option in options:
            found[option] = value.strip().strip("'\"")
    for option, variable in options.items():
        if os.environ.get(variable):
            found[option] = os.environ[variable]
    arguments = {}
    for option, value in found.items():
        kept = [
            item
            for item in value.split()
            if option == "trusted-host"
            or (not item.startswith("file:") and urlparse(item).password is None)
        ]
        if kept:
            arguments[options[option]] = " ".join(kept)
    return arguments
