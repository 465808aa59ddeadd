"""`--install-policy`: what gets installed, and what a missing worker type says."""

from __future__ import annotations

import pytest

from skyrun._version import __version__
from skyrun.workers import install
from skyrun.workers.install import InstallPolicy, WorkerTypeUnavailable, load_worker_type
from skyrun.workers.process import ProcessWorker
from skyrun.workers.registry import UnknownWorkerType


def never_asked(question: str) -> bool:
    raise AssertionError(f"asked {question!r}")


def test_requirement_pins_the_version_or_uses_the_local_source() -> None:
    assert install.requirement_for("gcp", None) == f"skyrun[gcp]=={__version__}"
    assert install.requirement_for("gcp", "/src/skyrun") == "/src/skyrun[gcp]"


def test_an_installed_type_loads_under_any_policy_but_always() -> None:
    for policy in (InstallPolicy.NEVER, InstallPolicy.IF_NOT_PRESENT, InstallPolicy.PROMPT):
        cls = load_worker_type("process", policy, interactive=False, confirm=never_asked)
        assert cls is ProcessWorker


@pytest.mark.parametrize("policy", [InstallPolicy.NEVER, InstallPolicy.PROMPT])
def test_a_missing_type_names_what_to_install(policy: InstallPolicy) -> None:
    # cloud-run's module is not part of this installation; without a TTY, prompt is never.
    with pytest.raises(WorkerTypeUnavailable, match=r"pip install 'skyrun\[gcp\]'"):
        load_worker_type("cloud-run", policy, interactive=False, confirm=never_asked)


def test_prompt_declined_installs_nothing() -> None:
    with pytest.raises(WorkerTypeUnavailable):
        load_worker_type(
            "cloud-run", InstallPolicy.PROMPT, interactive=True, confirm=lambda q: False
        )


def test_an_unknown_type_lists_the_known_ones() -> None:
    with pytest.raises(UnknownWorkerType, match="process"):
        load_worker_type("kubernetes", InstallPolicy.NEVER, interactive=False, confirm=never_asked)
