"""Loading a deployment's entrypoint for `skyrun flow-run execute`."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from skyrun.sdk.execute import EntrypointError, load_flow
from skyrun.sdk.flows import Flow

FLOWS = """
from skyrun import flow
from helper import VALUE


@flow
def myflow():
    return VALUE


def plain():
    return 1
"""


@pytest.fixture
def project(tmp_path: Path) -> Iterator[Path]:
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "flows.py").write_text(FLOWS)
    (tmp_path / "pkg" / "helper.py").write_text("VALUE = 42\n")
    (tmp_path / "pkg" / "broken.py").write_text("raise RuntimeError('boom at import')\n")
    cwd = os.getcwd()
    os.chdir(tmp_path)
    yield tmp_path
    os.chdir(cwd)


def test_a_file_entrypoint_loads_with_its_sibling_modules(project: Path) -> None:
    flow = load_flow("pkg/flows.py:myflow")
    assert isinstance(flow, Flow)
    assert flow.fn() == 42


def test_a_module_entrypoint_must_be_a_flow() -> None:
    with pytest.raises(EntrypointError, match="is a type, not a skyrun flow"):
        load_flow("skyrun.sdk.flows:Flow")


@pytest.mark.parametrize(
    ("entrypoint", "fragment"),
    [
        ("pkg/missing.py:myflow", "does not exist"),
        ("pkg/flows.py:nope", "has no attribute 'nope'"),
        ("pkg/flows.py:plain", "not a skyrun flow"),
        ("pkg/broken.py:myflow", "RuntimeError: boom at import"),
        ("no_such_package.mod:myflow", "ModuleNotFoundError"),
        ("noseparator", "must look like"),
    ],
)
def test_bad_entrypoints_are_explained(project: Path, entrypoint: str, fragment: str) -> None:
    with pytest.raises(EntrypointError) as info:
        load_flow(entrypoint)
    assert fragment in str(info.value)
    assert entrypoint in str(info.value)
