"""Image steps: build_docker_image and push_docker_image, with Docker, Podman or Buildah.

The builder is the step's `builder` argument, or else the first that works here: docker
when an engine answers `docker info`, podman when `podman info` works, buildah when it is
installed (it needs no daemon). The builder's output is streamed line by line.

The builder's environment is this process's, unchanged (see `skyrun.deploy.builders`).

A tag left out is the build's UTC time, `YYYYMMDD-HHMMSS`: later builds sort later, and
each build gets a tag of its own, so a deployment names exactly the image it was built with.
"""

from __future__ import annotations

import base64
import json
import tempfile
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from skyrun.deploy import dockerfile as auto
from skyrun.deploy.builders import choose_builder, docker_login, run_builder
from skyrun.deploy.steps.errors import StepError

TAG_CHARACTERS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-")


def default_tag(now: datetime | None = None) -> str:
    """The tag of a build that names none: its UTC time, `YYYYMMDD-HHMMSS`."""
    return (now or datetime.now(UTC)).strftime("%Y%m%d-%H%M%S")


def image_reference(image_name: str, tag: str | None) -> tuple[str, str]:
    """`(name, tag)` from `image_name` (which may end in `:tag`) and `tag`.

    Raises:
        StepError: The name is empty, has a digest, or two different tags are given, or
            the tag has characters a tag cannot have.
    """
    name = image_name.strip()
    if not name or "@" in name:
        raise StepError(
            f"image_name {image_name!r} must be a repository such as "
            "'registry.example.com/team/app' (optionally ending in ':tag'), without a digest"
        )
    last = name.rsplit("/", 1)[-1]
    if ":" in last:
        name, embedded = name.rsplit(":", 1)
        if tag is not None and str(tag) != embedded:
            raise StepError(
                f"image_name {image_name!r} has tag {embedded!r} and `tag` is {tag!r}; give one"
            )
        tag = embedded
    host, _, repository = name.partition("/")
    if registry_of(name) == "docker.io":
        repository = name  # no host in front: all of it is the repository
    if repository != repository.lower():
        raise StepError(
            f"image_name {image_name!r}: a repository name is lowercase "
            f"(e.g. {(host + '/' if repository != name else '') + repository.lower()!r})"
        )
    tag = default_tag() if tag is None or str(tag) == "" else str(tag)
    if len(tag) > 128 or tag[0] in ".-" or not set(tag) <= TAG_CHARACTERS:
        raise StepError(
            f"tag {tag!r} is not a valid image tag: up to 128 letters, digits, '_', '.' and "
            "'-', not starting with '.' or '-'"
        )
    return name, tag


def _dockerfile_path(context: Path, dockerfile: str) -> Path:
    path = Path(dockerfile).expanduser()
    path = path if path.is_absolute() else context / path
    if not path.is_file():
        raise StepError(
            f"no Dockerfile at {path}; write one there, name yours in `dockerfile:` "
            "(relative to `path`), or use `dockerfile: auto` to have skyrun write it"
        )
    return path


def _string_map(value: Any, argument: str) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise StepError(f"{argument} must be a mapping of names to values, got {value!r}")
    return {str(key): str(item) for key, item in value.items()}


def build_docker_image(
    image_name: str,
    tag: str | None = None,
    dockerfile: str = "Dockerfile",
    base_image: str | None = None,
    platform: str | None = None,
    build_args: Mapping[str, Any] | None = None,
    builder: str | None = None,
    path: str = ".",
) -> dict[str, Any]:
    """Build an image of the project in `path`.

    Args:
        image_name: The repository, e.g. `registry.example.com/team/app` (may end in `:tag`).
        tag: The tag; default the build's UTC time, `YYYYMMDD-HHMMSS`.
        dockerfile: A Dockerfile relative to `path`, or `auto`: skyrun writes one that
            installs this skyrun and `requirements.txt` and copies the project, less what
            `.skyrunignore` ignores, to `/opt/skyrun/<name>` (see `skyrun.deploy.dockerfile`).
        base_image: With `auto`, the image to start from (default `python:X.Y-slim` of
            this Python). With a Dockerfile of your own it is the build argument
            `BASE_IMAGE`, for a Dockerfile that says `ARG BASE_IMAGE` / `FROM ${BASE_IMAGE}`.
        platform: The target platform, e.g. `linux/amd64`.
        build_args: Build arguments (`--build-arg NAME=VALUE`). With `auto`, the package
            index of this machine's pip (`PIP_INDEX_URL`, `PIP_EXTRA_INDEX_URL`,
            `PIP_TRUSTED_HOST`) is passed too, unless given here.
        builder: `docker`, `podman` or `buildah`; default the first that works here.
        path: The project's directory. With a Dockerfile of your own it is the build
            context as it is (the builder applies `.dockerignore` / `.containerignore`);
            with `auto` the context is a copy of its kept files.

    Returns:
        {"image_name", "tag", "image"}, `image` being `image_name:tag`.

    Raises:
        StepError: No builder, no Dockerfile, an invalid `.skyrunignore`, or the build failed.
    """
    name, tag = image_reference(image_name, tag)
    image = f"{name}:{tag}"
    project = Path(path).expanduser()
    if not project.is_dir():
        raise StepError(f"path {path!r} is not a directory; it must be the project to build")
    arguments = _string_map(build_args, "build_args")
    chosen = choose_builder(builder)
    with tempfile.TemporaryDirectory(prefix="skyrun-build-") as scratch:
        if dockerfile == "auto":
            context = Path(scratch)
            dockerfile_path = auto.write_build_context(project, context, base_image)
            arguments = {**auto.pip_index_build_args(), **arguments}
        else:
            context = project
            dockerfile_path = _dockerfile_path(project, dockerfile)
            if base_image is not None:
                arguments.setdefault("BASE_IMAGE", base_image)
        command = [chosen, "build", "-t", image, "-f", str(dockerfile_path)]
        if platform:
            command += ["--platform", platform]
        for key, value in arguments.items():
            command += ["--build-arg", f"{key}={value}"]
        command.append(str(context))
        run_builder(command, f"build {image}", chosen)
    return {"image_name": name, "tag": tag, "image": image}


def registry_of(image_name: str, registry_url: str | None = None) -> str:
    """The registry host an image is pushed to: `registry_url` without scheme or path, else
    the first part of `image_name` when it is a host (has `.` or `:`, or is `localhost`),
    else Docker Hub."""
    if registry_url:
        host = registry_url.split("://", 1)[-1].split("/", 1)[0]
        return host
    first, _, rest = image_name.partition("/")
    if rest and ("." in first or ":" in first or first == "localhost"):
        return first
    return "docker.io"


def _credentials(value: Any) -> tuple[str, str, str | None]:
    if not isinstance(value, Mapping) or not {"username", "password"} <= set(value):
        raise StepError(
            "credentials must be a mapping with `username`, `password` and optionally "
            "`registry_url` (e.g. from `{{ skyrun.blocks.docker-registry-credentials.NAME }}`)"
        )
    registry_url = value.get("registry_url")
    return str(value["username"]), str(value["password"]), registry_url and str(registry_url)


def _flag(value: Any, argument: str) -> bool:
    # A templated value arrives as text ("{{ $TLS_VERIFY }}"), a literal as a YAML boolean.
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("true", "yes", "1"):
        return True
    if text in ("false", "no", "0"):
        return False
    raise StepError(f"{argument} must be true or false, not {value!r}")


def push_docker_image(
    image_name: str,
    tag: str | None = None,
    credentials: Mapping[str, Any] | None = None,
    tls_verify: bool = True,
    builder: str | None = None,
) -> dict[str, Any]:
    """Push an image built before (by build_docker_image) to its registry.

    Args:
        image_name: The repository, as given to build_docker_image (may end in `:tag`).
        tag: The tag; usually `{{ build_image.tag }}` from the build step.
        credentials: `{username, password, registry_url?}`. Buildah and Podman get them in
            a private auth file for this push only (a password never appears on a command
            line); Docker gets `docker login --password-stdin`, which keeps them in the
            user's Docker configuration as a login by hand would.
        tls_verify: False to push over plain HTTP or to a registry with a self-signed
            certificate (`--tls-verify=false`; Docker decides that in its engine's
            `insecure-registries` instead, so it refuses this unless the registry is local).
        builder: `docker`, `podman` or `buildah`; default the first that works here.

    Returns:
        {"image_name", "tag", "image"}.

    Raises:
        StepError: No builder, bad credentials, or the push failed.
    """
    if tag is None and ":" not in image_name.rsplit("/", 1)[-1]:
        raise StepError(
            "no tag to push: give `tag` (e.g. '{{ build_image.tag }}' from a build step "
            "with `id: build_image`) or end image_name with ':tag'"
        )
    name, tag = image_reference(image_name, tag)
    image = f"{name}:{tag}"
    login = _credentials(credentials) if credentials is not None else None
    verify = _flag(tls_verify, "tls_verify")
    chosen = choose_builder(builder)
    with tempfile.TemporaryDirectory(prefix="skyrun-push-") as scratch:
        command = [chosen, "push"]
        if login is not None:
            username, password, registry_url = login
            registry = registry_of(name, registry_url)
            if chosen == "docker":
                docker_login(registry, username, password)
            else:
                token = base64.b64encode(f"{username}:{password}".encode()).decode()
                authfile = Path(scratch, "auth.json")
                authfile.write_text(json.dumps({"auths": {registry: {"auth": token}}}))
                authfile.chmod(0o600)
                command += ["--authfile", str(authfile)]
        if not verify:
            if chosen != "docker":
                command.append("--tls-verify=false")
            elif registry_of(name).split(":")[0] not in ("localhost", "127.0.0.1"):
                raise StepError(
                    "docker cannot skip TLS verification for one push: add the registry to "
                    "`insecure-registries` in the engine's daemon.json, or use builder buildah "
                    "or podman"
                )
        command.append(image)
        if chosen == "buildah":
            command.append(f"docker://{image}")
        run_builder(command, f"push {image}", chosen)
    return {"image_name": name, "tag": tag, "image": image}
