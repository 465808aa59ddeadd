"""The Dockerfile skyrun writes for `dockerfile: auto`, and the pip index it passes to the build."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from skyrun.deploy.dockerfile import (
    auto_dockerfile,
    default_base_image,
    image_directory,
    pip_index_build_args,
    project_name,
    skyrun_source,
)

WHEEL = "skyrun-0.1.0-py3-none-any.whl"


def test_default_base_is_the_running_pythons_slim_image() -> None:
    expected = f"python:{sys.version_info.major}.{sys.version_info.minor}-slim"
    assert default_base_image() == expected
    assert auto_dockerfile("app", skyrun_requirement=WHEEL).splitlines()[2] == f"FROM {expected}"


def test_wheel_in_context_then_requirements_then_project() -> None:
    text = auto_dockerfile(
        "my app", "localhost/base:1", requirements=True, skyrun_requirement=WHEEL
    )
    instructions = [line for line in text.splitlines() if line and not line.startswith("#")]
    assert instructions == [
        "FROM localhost/base:1",
        "ARG PIP_INDEX_URL",
        "ARG PIP_EXTRA_INDEX_URL",
        "ARG PIP_TRUSTED_HOST",
        "ENV PYTHONUNBUFFERED=1",
        "COPY .skyrun-dist/ /tmp/skyrun-dist/",
        f"RUN python -m pip install --no-cache-dir /tmp/skyrun-dist/{WHEEL} && rm -rf /tmp/skyrun-dist",
        "WORKDIR /opt/skyrun/my-app",
        "COPY project/requirements.txt ./requirements.txt",
        "RUN python -m pip install --no-cache-dir -r requirements.txt",
        "COPY project/ ./",
    ]


def test_without_a_wheel_skyrun_comes_from_the_index_and_no_requirements_step() -> None:
    text = auto_dockerfile("app", "base", requirements=False, skyrun_requirement="skyrun==0.1.0")
    assert 'RUN python -m pip install --no-cache-dir "skyrun==0.1.0"' in text
    assert ".skyrun-dist" not in text
    assert "requirements.txt" not in text
    assert text.endswith("WORKDIR /opt/skyrun/app\nCOPY project/ ./\n")


@pytest.mark.parametrize(
    ("name", "directory"),
    [
        ("flows", "/opt/skyrun/flows"),
        ("Data Team / ETL", "/opt/skyrun/Data-Team-ETL"),
        ("../../etc", "/opt/skyrun/etc"),
        ("...", "/opt/skyrun/project"),
    ],
)
def test_image_directory_stays_under_opt_skyrun(name: str, directory: str) -> None:
    assert image_directory(name) == directory


def test_project_name_from_skyrun_yaml_else_the_directory(tmp_path: Path) -> None:
    project = tmp_path / "checkout"
    project.mkdir()
    assert project_name(project) == "checkout"
    (project / "skyrun.yaml").write_text("name: etl\nbuild: []\n")
    assert project_name(project) == "etl"
    (project / "skyrun.yaml").write_text("name: [not, text\n")
    assert project_name(project) == "checkout"


@pytest.fixture
def pip_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A pip configuration file of the test's own, and no PIP_* index variables."""
    for name in ("PIP_INDEX_URL", "PIP_EXTRA_INDEX_URL", "PIP_TRUSTED_HOST"):
        monkeypatch.delenv(name, raising=False)
    config = tmp_path / "pip.conf"
    config.write_text("")
    monkeypatch.setenv("PIP_CONFIG_FILE", str(config))
    return config


def test_pip_index_from_config_and_environment(
    pip_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pip_env.write_text(
        "[global]\nindex-url = https://mirror.example/simple\ntrusted-host = mirror.example\n"
    )
    arguments = pip_index_build_args()
    assert arguments["PIP_INDEX_URL"] == "https://mirror.example/simple"
    assert arguments["PIP_TRUSTED_HOST"] == "mirror.example"
    # The environment wins, as it does for pip itself.
    monkeypatch.setenv("PIP_INDEX_URL", "https://other.example/simple")
    assert pip_index_build_args()["PIP_INDEX_URL"] == "https://other.example/simple"


def test_local_and_password_urls_stay_out_of_the_build(
    pip_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(
        "PIP_EXTRA_INDEX_URL",
        "file:///opt/pypi/simple https://ci:token@private.example/simple https://extra.example/simple",
    )
    monkeypatch.setenv("PIP_INDEX_URL", "file:///opt/only-local/simple")
    arguments = pip_index_build_args()
    assert arguments.get("PIP_EXTRA_INDEX_URL") == "https://extra.example/simple"
    assert "PIP_INDEX_URL" not in arguments


def test_skyrun_source_follows_how_skyrun_was_installed(tmp_path: Path) -> None:
    wheel = tmp_path / WHEEL
    wheel.write_bytes(b"")
    checkout = tmp_path / "skyrun-checkout"
    checkout.mkdir()
    editable = {"url": checkout.as_uri(), "dir_info": {"editable": True}}
    assert skyrun_source(editable) == ("checkout", str(checkout))
    assert skyrun_source({"url": checkout.as_uri(), "dir_info": {}}) == ("checkout", str(checkout))
    assert skyrun_source({"url": wheel.as_uri(), "archive_info": {}}) == ("wheel", str(wheel))
    gone = {"url": (tmp_path / "gone.whl").as_uri(), "archive_info": {}}
    assert skyrun_source(gone) == ("index", "")
    assert skyrun_source({"url": "https://example.org/skyrun-0.1.0.tar.gz"}) == ("index", "")
    assert skyrun_source(None) == ("index", "")
