"""build_docker_image and push_docker_image for real: Buildah, a loopback registry, a base
image made here (tests/images.py). Real builds are few: each costs a pip install of skyrun."""

from __future__ import annotations

import os
import platform
import shutil
from pathlib import Path

import pytest

from images import (
    Registry,
    base_image,
    buildah,
    image_registry,
    image_registry_with_login,
    image_tools,
    run_in_image,
)
from skyrun.deploy.builders import choose_builder
from skyrun.deploy.steps import StepError, run_steps
from skyrun.deploy.steps.docker import build_docker_image, default_tag, push_docker_image

__all__ = [
    "base_image",
    "image_registry",
    "image_registry_with_login",
    "image_tools",
]  # fixtures, used by name

# The base image is made for this machine's architecture, so that is the one to ask for.
HOST_PLATFORM = {"x86_64": "linux/amd64", "aarch64": "linux/arm64"}.get(
    platform.machine(), f"linux/{platform.machine()}"
)

FLOWS = """\
from skyrun import flow


@flow
def hello(name: str = "world") -> str:
    return f"hello {name}"
"""


def tiny_project(root: Path) -> Path:
    root.mkdir()
    (root / "skyrun.yaml").write_text("name: tiny proj\n")
    (root / "flows.py").write_text(FLOWS)
    (root / "requirements.txt").write_text("six\n")
    (root / "secret.txt").write_text("do not ship\n")
    (root / "logs").mkdir()
    (root / "logs" / "run.log").write_text("noise\n")
    (root / ".skyrunignore").write_text("# kept out of the image\nsecret.txt\nlogs/\n")
    return root


def test_auto_image_is_built_pushed_and_runs_the_project(
    tmp_path: Path, base_image: str, image_registry: Registry, capsys: pytest.CaptureFixture[str]
) -> None:
    project = tiny_project(tmp_path / "project")
    repository = "skyrun-test/tiny"
    steps = [
        {
            "skyrun.deploy.steps.build_docker_image": {
                "id": "build_image",
                "image_name": f"{image_registry.host}/{repository}",
                "dockerfile": "auto",
                "base_image": base_image,
                "builder": "buildah",
                "path": str(project),
            }
        },
        {
            "skyrun.deploy.steps.push_docker_image": {
                "image_name": "{{ build_image.image_name }}",
                "tag": "{{ build_image.tag }}",
                # The registry asks for none; this proves the auth file Buildah is given works.
                "credentials": {"username": "ci", "password": "not-needed"},
                "tls_verify": False,
            }
        },
    ]
    built, pushed = run_steps(steps, section="build")
    streamed = capsys.readouterr().out
    assert "COPY project/ ./" in streamed  # the builder's output came through as it ran

    image = f"{image_registry.host}/{repository}:{built['tag']}"
    assert built == {
        "image_name": f"{image_registry.host}/{repository}",
        "tag": built["tag"],
        "image": image,
    }
    assert pushed == built
    assert image_registry.tags(repository) == [built["tag"]]

    script = (
        "pwd; skyrun version; python -c 'import flows, six; print(flows.hello.__name__)'; "
        "ls -A; ls /tmp"
    )
    try:
        result = run_in_image(image, "sh", "-c", script)
    finally:
        buildah("rmi", "--force", image, check=False)  # each test image is ~300 MB on disk
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "/opt/skyrun/tiny-proj"
    assert lines[1] == "0.1.0"
    assert lines[2] == "hello"
    listed = set(lines[3:])
    assert {"flows.py", "requirements.txt", "skyrun.yaml", ".skyrunignore"} <= listed
    assert "secret.txt" not in listed and "logs" not in listed
    assert "skyrun-dist" not in listed  # the wheel was removed after installing


def test_push_logs_in_with_credentials_and_fails_clearly_without(
    base_image: str, image_registry_with_login: Registry
) -> None:
    registry = image_registry_with_login
    image = f"{registry.host}/skyrun-test/login:1"
    buildah("tag", base_image, image)  # any local image will do: this is about the push
    try:
        with pytest.raises(StepError) as raised:
            push_docker_image(image, tls_verify=False, builder="buildah")
        message = str(raised.value)
        assert message.startswith(f"buildah could not push {image} (`buildah push")
        assert "authentication required" in message.lower()
        assert registry.tags("skyrun-test/login") == []

        credentials = {
            "username": registry.username,
            "password": registry.password,
            "registry_url": f"http://{registry.host}/",
        }
        pushed = push_docker_image(
            image, credentials=credentials, tls_verify="false", builder="buildah"
        )
        assert pushed["image"] == image
        assert registry.tags("skyrun-test/login") == ["1"]
    finally:
        buildah("rmi", image, check=False)


def test_failing_build_names_the_step_and_shows_the_builders_last_lines(
    tmp_path: Path, base_image: str
) -> None:
    project = tmp_path / "broken"
    project.mkdir()
    (project / "Dockerfile").write_text(f"FROM {base_image}\nRUN echo about to fail && false\n")
    with pytest.raises(StepError) as raised:
        run_steps(
            [
                {
                    "build_docker_image": {
                        "image_name": "localhost/broken",
                        "tag": "1",
                        "path": str(project),
                    }
                }
            ],
            section="build",
        )
    message = str(raised.value)
    assert message.startswith(
        "build step 1 (build_docker_image): buildah could not build localhost/broken:1"
    )
    assert "exited with code" in message
    assert "about to fail" in message  # the RUN step's own output is among the last lines
    assert "RUN echo about to fail && false" in message


def test_a_missing_dockerfile_says_what_to_do(tmp_path: Path, image_tools: None) -> None:
    with pytest.raises(
        StepError, match=r"no Dockerfile at .*Dockerfile; write one there.*dockerfile: auto"
    ):
        build_docker_image("localhost/none", tag="1", builder="buildah", path=str(tmp_path))


def test_builder_podman_missing_is_one_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, image_tools: None
) -> None:
    # A PATH with buildah only, so podman is missing whether or not this machine has it.
    monkeypatch.setenv("PATH", path_with(tmp_path, "buildah"))
    (tmp_path / "Dockerfile").write_text("FROM scratch\n")
    with pytest.raises(StepError) as raised:
        build_docker_image("localhost/x", tag="1", builder="podman", path=str(tmp_path))
    message = str(raised.value)
    assert message.startswith("builder 'podman' is not installed; install one of docker")
    assert "podman (`apt-get install podman`)" in message
    assert "buildah (`apt-get install buildah`)" in message


def path_with(tmp_path: Path, *commands: str) -> str:
    """A PATH directory holding links to these commands only (those installed here)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    for command in commands:
        found = shutil.which(command)
        if found is not None:
            os.symlink(found, bin_dir / command)
    return str(bin_dir)


def test_default_builder_skips_a_docker_without_an_engine(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, image_tools: None
) -> None:
    if shutil.which("docker") is None:
        pytest.skip("no docker CLI here to show it being passed over")
    monkeypatch.setenv("PATH", path_with(tmp_path, "docker", "buildah"))
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/no-engine.sock")
    assert choose_builder(None) == "buildah"
    with pytest.raises(StepError, match=r"builder 'docker' is installed but `docker info` fails"):
        choose_builder("docker")


def test_no_builder_at_all_names_the_three(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", path_with(tmp_path))
    with pytest.raises(StepError) as raised:
        choose_builder(None)
    assert str(raised.value) == (
        "no image builder works here (docker is not installed; podman is not installed; "
        "buildah is not installed); install one of docker (with a running engine: `docker "
        "info` must work), podman (`apt-get install podman`) or buildah (`apt-get install "
        "buildah`), or name an installed one in the step's `builder:`"
    )


def test_buildah_default_isolation_failing_in_a_container_says_how_to_fix_it(
    tmp_path: Path, base_image: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("BUILDAH_ISOLATION")
    (tmp_path / "Dockerfile").write_text(f"FROM {base_image}\nRUN true\n")
    try:
        build_docker_image("localhost/isolation", tag="1", builder="buildah", path=str(tmp_path))
    except StepError as exc:
        assert "set BUILDAH_ISOLATION=chroot in the environment of `skyrun deploy`" in str(exc)
    else:
        buildah("rmi", "localhost/isolation:1", check=False)
        pytest.skip("Buildah's default isolation works on this machine")


def test_a_bad_skyrunignore_line_stops_an_auto_build_before_the_builder_runs(
    tmp_path: Path, image_tools: None
) -> None:
    (tmp_path / "flows.py").write_text(FLOWS)
    (tmp_path / ".skyrunignore").write_text("*.pyc\n!\n")
    with pytest.raises(StepError, match=r"\.skyrunignore:2: '!' is not a gitignore pattern"):
        build_docker_image(
            "localhost/bad-ignore",
            tag="1",
            dockerfile="auto",
            builder="buildah",
            path=str(tmp_path),
        )
    assert (
        buildah("inspect", "--type", "image", "localhost/bad-ignore:1", check=False).returncode != 0
    )


def test_own_dockerfile_gets_base_image_build_args_platform_and_a_time_tag(
    tmp_path: Path, base_image: str
) -> None:
    (tmp_path / "Dockerfile").write_text(
        "ARG BASE_IMAGE\nFROM ${BASE_IMAGE}\nARG GREETING\n"
        'RUN echo "$GREETING from $(uname -m)" > /greeting\n'
    )
    before = default_tag()
    # No builder named: the first that works here (buildah: docker has no engine here).
    built = build_docker_image(
        "localhost/skyrun-test/own",
        base_image=base_image,
        build_args={"GREETING": "hello"},
        platform=HOST_PLATFORM,
        path=str(tmp_path),
    )
    try:
        assert before <= built["tag"] <= default_tag()
        assert built["image"] == f"localhost/skyrun-test/own:{built['tag']}"
        result = run_in_image(built["image"], "cat", "/greeting", pull=False)
        assert (result.returncode, result.stdout) == (0, f"hello from {platform.machine()}\n"), (
            result.stderr
        )
    finally:
        buildah("rmi", built["image"], check=False)
