"""Image names, tags, registries and arguments of the image steps (no builder needed)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from skyrun.deploy.steps import StepError
from skyrun.deploy.steps.docker import (
    default_tag,
    image_reference,
    push_docker_image,
    registry_of,
)


def test_default_tag_is_the_utc_time() -> None:
    assert default_tag(datetime(2026, 12, 2, 6, 5, 9, tzinfo=UTC)) == "20261202-060509"
    before = default_tag()
    name, tag = image_reference("app", None)
    assert name == "app" and before <= tag <= default_tag()


@pytest.mark.parametrize(
    ("image_name", "tag", "expected"),
    [
        ("app", "1.0", ("app", "1.0")),
        ("app:1.0", None, ("app", "1.0")),
        ("app:1.0", "1.0", ("app", "1.0")),
        ("127.0.0.1:5000/team/app", "v2", ("127.0.0.1:5000/team/app", "v2")),
        ("127.0.0.1:5000/team/app:v2", None, ("127.0.0.1:5000/team/app", "v2")),
        ("app", 7, ("app", "7")),
    ],
)
def test_image_reference(image_name: str, tag: str | None, expected: tuple[str, str]) -> None:
    assert image_reference(image_name, tag) == expected


@pytest.mark.parametrize(
    ("image_name", "tag", "problem"),
    [
        ("app:1", "2", "has tag '1' and `tag` is '2'; give one"),
        ("", None, "must be a repository"),
        ("app@sha256:abc", None, "without a digest"),
        ("app", "has space", "is not a valid image tag"),
        ("app", "-x", "not starting with '.' or '-'"),
        ("Team/App", "1", "a repository name is lowercase (e.g. 'team/app')"),
        ("Registry.Example.com/Team/App", "1", "lowercase (e.g. 'Registry.Example.com/team/app')"),
    ],
)
def test_bad_image_references(image_name: str, tag: str | None, problem: str) -> None:
    with pytest.raises(StepError, match=problem.replace("(", r"\(").replace(")", r"\)")):
        image_reference(image_name, tag)


@pytest.mark.parametrize(
    ("image_name", "registry_url", "registry"),
    [
        ("app", None, "docker.io"),
        ("team/app", None, "docker.io"),
        ("localhost/app", None, "localhost"),
        ("127.0.0.1:5000/app", None, "127.0.0.1:5000"),
        ("europe-docker.pkg.dev/p/r/app", None, "europe-docker.pkg.dev"),
        ("team/app", "https://index.docker.io/v1/", "index.docker.io"),
    ],
)
def test_registry_of(image_name: str, registry_url: str | None, registry: str) -> None:
    assert registry_of(image_name, registry_url) == registry


def test_push_needs_a_tag() -> None:
    with pytest.raises(
        StepError, match=r"no tag to push: give `tag` \(e.g. '\{\{ build_image.tag \}\}'"
    ):
        push_docker_image("localhost/app")


@pytest.mark.parametrize(
    ("arguments", "problem"),
    [
        (
            {"credentials": {"username": "u"}},
            "credentials must be a mapping with `username`, `password`",
        ),
        ({"credentials": "u:p"}, "credentials must be a mapping"),
        ({"tls_verify": "sometimes"}, "tls_verify must be true or false, not 'sometimes'"),
    ],
)
def test_push_arguments_are_checked_before_any_builder_runs(
    arguments: dict[str, object], problem: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")  # no builder: the argument error comes first
    with pytest.raises(StepError, match=problem.replace("(", r"\(")):
        push_docker_image("localhost/app", tag="1", **arguments)  # type: ignore[arg-type]
