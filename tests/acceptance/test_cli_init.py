"""Acceptance: `skyrun init` as a real process in fresh folders: recipes, fields, --force,
--from the reference guide's prefect.yaml, and the questions it asks in a terminal (a pty)."""

from __future__ import annotations

import os
import pty
import select
import subprocess
import sys
import time
from pathlib import Path

import pytest

from processes import clean_env
from skyrun.deploy.project import load_project

INIT = [str(Path(sys.executable).parent / "skyrun"), "init"]
GUIDE = Path(__file__).parents[1] / "data" / "prefect-guide.yaml"


@pytest.fixture
def project(tmp_path: Path) -> Path:
    directory = tmp_path / "weather"
    (directory / "flows").mkdir(parents=True)
    (directory / "flows" / "weather_flow.py").write_text("def fetch_weather(): ...\n")
    return directory


def init(directory: Path, *args: str) -> subprocess.CompletedProcess[str]:
    # stdin is not a terminal: nothing may be asked.
    return subprocess.run(
        [*INIT, *args],
        cwd=directory,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
        env=clean_env(directory.parent / "home"),
    )


def test_docker_recipe_with_fields(project: Path) -> None:
    result = init(
        project, "--recipe", "docker", "--field", "image_name=reg.local/w", "-f", "tag=v1"
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "Wrote skyrun.yaml and .skyrunignore (recipe docker).",
        "Next: add a deployment under `deployments:` in skyrun.yaml (an example is at its "
        "end), then run `skyrun deploy --name NAME`.",
    ]
    loaded = load_project(project / "skyrun.yaml")
    build = loaded.build[0]["skyrun.deploy.steps.build_docker_image"]
    assert (build["image_name"], build["tag"]) == ("reg.local/w", "v1")
    assert ".git/" in (project / ".skyrunignore").read_text()


def test_a_first_deployment_from_fields(project: Path) -> None:
    result = init(
        project,
        "--recipe",
        "local",
        "--field",
        "entrypoint=flows/weather_flow.py:fetch_weather",
        "--field",
        "work_pool=local-pool",
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1] == "Next: skyrun deploy --name fetch-weather"
    deployment = load_project(project / "skyrun.yaml").deployment("fetch-weather")
    assert deployment.work_pool is not None and deployment.work_pool.name == "local-pool"


def test_missing_fields_are_listed_when_not_in_a_terminal(project: Path) -> None:
    result = init(project, "--recipe", "docker-gcs", "--field", "tag=v1")
    assert result.returncode == 1
    assert result.stderr.startswith("Error: recipe 'docker-gcs' needs image_name (")
    assert "pass --field image_name=... --field bucket=... --field folder=..." in result.stderr
    assert sorted(path.name for path in project.iterdir()) == ["flows"]


def test_nothing_is_overwritten_without_force(project: Path) -> None:
    (project / "skyrun.yaml").write_text("name: mine\n")
    result = init(project, "--recipe", "local")
    assert result.returncode == 1
    assert result.stderr.strip() == (
        f"Error: {project / 'skyrun.yaml'} exists; pass --force to replace it"
    )
    assert (project / "skyrun.yaml").read_text() == "name: mine\n"
    assert not (project / ".skyrunignore").exists()
    result = init(project, "--recipe", "local", "--force")
    assert result.returncode == 0, result.stderr
    assert load_project(project / "skyrun.yaml").name == "weather"


def test_an_existing_ignore_file_is_kept(project: Path) -> None:
    (project / ".skyrunignore").write_text("data/\n")
    result = init(project, "--recipe", "local")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[:2] == [
        "Wrote skyrun.yaml (recipe local).",
        "Kept the existing .skyrunignore (--force replaces it).",
    ]
    assert (project / ".skyrunignore").read_text() == "data/\n"


def test_without_a_recipe_and_no_terminal_local_is_used(project: Path) -> None:
    result = init(project)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[0] == (
        "No --recipe given: using 'local' (recipes: docker, docker-gcs, gcs, git, local)."
    )
    pull = load_project(project / "skyrun.yaml").pull
    assert pull == [{"skyrun.deploy.steps.set_working_directory": {"directory": str(project)}}]


@pytest.mark.parametrize(
    ("args", "error"),
    [
        (
            ["--recipe", "dockr"],
            "Error: unknown recipe 'dockr'; recipes: docker, docker-gcs, gcs, git, local",
        ),
        (
            ["--recipe", "local", "--field", "tagg=v1"],
            "Error: recipe 'local' has no field 'tagg'; its fields: name, directory, "
            "entrypoint, work_pool, deployment_name",
        ),
        (["--recipe", "local", "--field", "tag"], "Error: --field 'tag': write --field KEY=VALUE"),
        (["--from", "prefect.yaml", "--recipe", "local"], "Error: --from converts a prefect.yaml"),
        (["--from", "missing.yaml"], "Error: missing.yaml: cannot be read"),
    ],
)
def test_wrong_input_is_one_clear_error(project: Path, args: list[str], error: str) -> None:
    result = init(project, *args)
    assert result.returncode == 1
    assert result.stderr.startswith(error)
    assert "Traceback" not in result.stderr
    assert not (project / "skyrun.yaml").exists()


def test_from_the_guides_prefect_yaml(project: Path) -> None:
    (project / "prefect.yaml").write_text(GUIDE.read_text())
    result = init(project, "--from", "prefect.yaml")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "Wrote skyrun.yaml and .skyrunignore (converted from prefect.yaml)."
    assert lines[1] == "Notes on the conversion:"
    assert (
        "  - build[1]: requires prefect-docker>=0.3.1 dropped (skyrun's steps are built in)"
        in lines
    )
    assert lines[-1] == "Next: skyrun deploy --name gcp-weather-deploy"
    loaded = load_project(project / "skyrun.yaml")
    assert loaded.name == "weather"
    assert loaded.pull == [
        {"skyrun.deploy.steps.set_working_directory": {"directory": "/opt/skyrun/weather"}}
    ]


def _answer(fd: int, seen: bytearray, prompt: bytes, answer: bytes) -> None:
    """Wait for `prompt` in what came since the last answer, then type `answer`."""
    _read_until(fd, prompt, seen)
    os.write(fd, answer + b"\r")
    # What comes next is read after the answer's echo.
    seen.extend(b"\0")


def _read_until(fd: int, expected: bytes, seen: bytearray, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    start = seen.rfind(b"\0") + 1
    while expected not in seen[start:]:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise AssertionError(f"no {expected!r} in the output so far: {bytes(seen)!r}")
        ready, _, _ = select.select([fd], [], [], remaining)
        if ready:
            try:
                chunk = os.read(fd, 4096)
            except OSError:  # EIO: the process closed the terminal
                chunk = b""
            if not chunk:
                raise AssertionError(f"ended without {expected!r}: {bytes(seen)!r}")
            seen.extend(chunk)


def _read_to_end(fd: int, seen: bytearray) -> None:
    while True:
        ready, _, _ = select.select([fd], [], [], 30)
        if not ready:
            return
        try:
            chunk = os.read(fd, 4096)
        except OSError:
            return
        if not chunk:
            return
        seen.extend(chunk)


def test_in_a_terminal_it_asks_for_the_recipe_and_its_fields(project: Path) -> None:
    controller, terminal = pty.openpty()
    process = subprocess.Popen(
        INIT,
        cwd=project,
        stdin=terminal,
        stdout=terminal,
        stderr=terminal,
        env=clean_env(project.parent / "home"),
    )
    os.close(terminal)
    seen = bytearray()
    try:
        _answer(controller, seen, b"Recipe [local]: ", b"docker")
        _answer(controller, seen, b"image_name (the image's name with its registry", b"")
        # An empty answer is asked again.
        _answer(controller, seen, b"image_name (", b"reg.local/weather")
        _answer(controller, seen, b"tag (the image's tag", b"v7")
        _read_to_end(controller, seen)
        assert process.wait(timeout=30) == 0, bytes(seen)
    finally:
        if process.poll() is None:
            process.kill()
        os.close(controller)
    assert b"  docker: skyrun deploy builds an image" in seen
    assert b"Wrote skyrun.yaml and .skyrunignore (recipe docker)." in seen
    build = load_project(project / "skyrun.yaml").build[0]["skyrun.deploy.steps.build_docker_image"]
    assert (build["image_name"], build["tag"]) == ("reg.local/weather", "v7")
