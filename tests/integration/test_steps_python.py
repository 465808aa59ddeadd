"""pip_install_requirements and ensure_requirements (a step's `requires:`), with real pip.

Nothing comes from an index: the packages are wheels this file writes, found through
PIP_FIND_LINKS with PIP_NO_INDEX, and installed into a PIP_TARGET directory put on
sys.path, so the test environment itself is left as it was.
"""

from __future__ import annotations

import base64
import hashlib
import importlib.metadata
import shutil
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from skyrun.deploy.steps import StepError, run_steps
from skyrun.deploy.steps.python import ensure_requirements, pip_install_requirements

TINY_MODULE = "def hello(name='world'):\n    return {'greeting': 'hello ' + name}\n"


def write_wheel(
    directory: Path,
    name: str,
    version: str,
    files: dict[str, str],
    metadata: str = "",
) -> Path:
    """A pure-Python wheel of `files` (path -> text) and the extra METADATA lines given."""
    stem = f"{name.replace('-', '_')}-{version}"
    info = f"{stem}.dist-info"
    contents = {
        **files,
        f"{info}/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n{metadata}",
        f"{info}/WHEEL": "Wheel-Version: 1.0\nGenerator: skyrun-tests\nRoot-Is-Purelib: true\n"
        "Tag: py3-none-any\n",
    }
    record = []
    for path, text in contents.items():
        data = text.encode()
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        record.append(f"{path},sha256={digest},{len(data)}")
    record.append(f"{info}/RECORD,,")
    wheel = directory / f"{stem}-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        for path, text in contents.items():
            archive.writestr(path, text)
        archive.writestr(f"{info}/RECORD", "\n".join(record) + "\n")
    return wheel


@pytest.fixture
def wheels(tmp_path: Path) -> Path:
    directory = tmp_path / "wheels"
    directory.mkdir()
    write_wheel(
        directory,
        "skyrun-tiny",
        "1.0",
        {"skyrun_tiny_steps.py": TINY_MODULE},
        'Provides-Extra: more\nRequires-Dist: skyrun-tiny-more; extra == "more"\n',
    )
    write_wheel(directory, "skyrun-tiny-more", "1.0", {"skyrun_tiny_more.py": "VALUE = 1\n"})
    return directory


@pytest.fixture
def target(tmp_path: Path, wheels: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Where pip installs, on sys.path; pip finds only the wheels above."""
    directory = tmp_path / "site"
    directory.mkdir()
    monkeypatch.setenv("PIP_TARGET", str(directory))
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.setenv("PIP_FIND_LINKS", str(wheels))
    monkeypatch.syspath_prepend(str(directory))
    yield directory
    for module in ("skyrun_tiny_steps", "skyrun_tiny_more"):
        sys.modules.pop(module, None)


def installed(target: Path) -> set[str]:
    return {path.name for path in target.glob("*.dist-info")}


def test_only_missing_requirements_are_installed(target: Path, wheels: Path) -> None:
    # With no index, pip would fail on pyyaml or packaging: only skyrun-tiny may reach it.
    ensure_requirements(["pyyaml>=6", "packaging", "skyrun-tiny==1.0"])
    assert installed(target) == {"skyrun_tiny-1.0.dist-info"}
    assert importlib.metadata.version("skyrun-tiny") == "1.0"
    shutil.rmtree(wheels)
    ensure_requirements(["skyrun-tiny>=1", "SKYRUN_TINY"])  # satisfied: pip is not run


def test_a_missing_extra_is_installed(target: Path) -> None:
    ensure_requirements(["skyrun-tiny"])
    assert installed(target) == {"skyrun_tiny-1.0.dist-info"}
    ensure_requirements(["skyrun-tiny[more]"])
    assert installed(target) == {"skyrun_tiny-1.0.dist-info", "skyrun_tiny_more-1.0.dist-info"}


def test_a_requirement_for_another_platform_is_skipped(target: Path) -> None:
    ensure_requirements(["skyrun-not-anywhere; python_version < '3'"])
    assert installed(target) == set()


def test_an_installed_package_at_a_wrong_version_is_named(target: Path) -> None:
    with pytest.raises(StepError) as info:
        ensure_requirements(["pyyaml<1", "packaging"])
    message = str(info.value)
    assert message.startswith("cannot install pyyaml<1: ")
    assert "No matching distribution found for pyyaml<1" in message


def test_a_malformed_requirement_is_named() -> None:
    with pytest.raises(StepError, match=r"requires: 'pyyaml>>6' is not a requirement"):
        ensure_requirements(["pyyaml>>6"])


def test_requires_installs_the_package_of_a_custom_step(target: Path) -> None:
    outputs = run_steps(
        [{"skyrun_tiny_steps.hello": {"requires": "skyrun-tiny", "name": "steps"}}],
        section="build",
    )
    assert outputs == [{"greeting": "hello steps"}]


def test_pip_install_requirements_resolves_paths_from_its_directory(
    tmp_path: Path,
    target: Path,
    wheels: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    project = tmp_path / "project"
    project.mkdir()
    shutil.copy(wheels / "skyrun_tiny-1.0-py3-none-any.whl", project)
    (project / "deps.txt").write_text("./skyrun_tiny-1.0-py3-none-any.whl\n")
    monkeypatch.chdir(tmp_path)
    outputs = pip_install_requirements("deps.txt", directory=str(project))
    assert "Successfully installed skyrun-tiny-1.0" in outputs["stdout"]
    assert "Successfully installed skyrun-tiny-1.0" in capsys.readouterr().out
    assert installed(target) == {"skyrun_tiny-1.0.dist-info"}


def test_pip_install_requirements_failure_names_the_file_and_pips_error(
    tmp_path: Path, target: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "requirements.txt").write_text("skyrun-tiny\nskyrun-not-anywhere\n")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(StepError) as info:
        pip_install_requirements(stream_output=False)
    message = str(info.value)
    assert message.startswith(f"pip could not install '{tmp_path / 'requirements.txt'}': ")
    assert message.endswith("No matching distribution found for skyrun-not-anywhere")


def test_a_missing_requirements_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(StepError) as info:
        run_steps([{"pip_install_requirements": {"directory": str(tmp_path)}}])
    assert str(info.value) == (
        f"pull step 1 (pip_install_requirements): requirements file "
        f"'{tmp_path / 'requirements.txt'}' not found; fix `requirements_file:` or `directory:`"
    )
