"""`--install-policy`: what gets installed, and what a missing worker type says."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from skyrun._version import __version__
from skyrun.jobs import types as registry
from skyrun.jobs.types import UnknownWorkerType
from skyrun.workers import install
from skyrun.workers.install import (
    InstallPolicy,
    LocalSource,
    WorkerTypeUnavailable,
    load_worker_type,
)
from skyrun.workers.process import ProcessWorker


def never_asked(question: str) -> bool:
    raise AssertionError(f"asked {question!r}")


def test_pip_gets_the_pinned_version_or_the_local_source_as_installed() -> None:
    assert install.pip_arguments("gcp", None) == [f"skyrun[gcp]=={__version__}"]
    plain = LocalSource("/src/skyrun", editable=False)
    assert install.pip_arguments("gcp", plain) == ["/src/skyrun[gcp]"]
    # A development checkout stays editable: a plain install would replace its code.
    editable = LocalSource("/src/skyrun", editable=True)
    assert install.pip_arguments("gcp", editable) == ["-e", "/src/skyrun[gcp]"]


def test_this_checkout_is_seen_as_an_editable_source() -> None:
    source = install.local_source()
    assert source is not None and source.editable
    assert (Path(source.path) / "src" / "skyrun" / "__init__.py").exists()


@pytest.fixture
def needs_a_dependency(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A worker type whose module exists but imports a dependency that is not installed."""
    (tmp_path / "needs_dependency_worker.py").write_text(
        "import skyrun_test_missing_dependency  # noqa\nclass Worker: ...\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setitem(
        registry.WORKER_TYPES, "needs-dep", ("needs_dependency_worker", "Worker", "gcp")
    )
    monkeypatch.delitem(sys.modules, "needs_dependency_worker", raising=False)
    return "needs-dep"


def test_an_installed_type_loads_under_any_policy_but_always() -> None:
    for policy in (InstallPolicy.NEVER, InstallPolicy.IF_NOT_PRESENT, InstallPolicy.PROMPT):
        cls = load_worker_type("process", policy, interactive=False, confirm=never_asked)
        assert cls is ProcessWorker


@pytest.mark.parametrize("policy", [InstallPolicy.NEVER, InstallPolicy.PROMPT])
def test_a_missing_dependency_names_what_to_install(
    needs_a_dependency: str, policy: InstallPolicy
) -> None:
    # Without a TTY, prompt behaves as never.
    with pytest.raises(WorkerTypeUnavailable, match=r"pip install 'skyrun\[gcp\]'"):
        load_worker_type(needs_a_dependency, policy, interactive=False, confirm=never_asked)


def test_prompt_declined_installs_nothing(needs_a_dependency: str) -> None:
    questions: list[str] = []

    def decline(question: str) -> bool:
        questions.append(question)
        return False

    with pytest.raises(WorkerTypeUnavailable, match="if-not-present"):
        load_worker_type(
            needs_a_dependency, InstallPolicy.PROMPT, interactive=True, confirm=decline
        )
    assert len(questions) == 1 and "[gcp]" in questions[0]


@pytest.mark.parametrize("policy", [InstallPolicy.IF_NOT_PRESENT, InstallPolicy.PROMPT])
def test_a_type_missing_from_skyrun_itself_installs_nothing(
    policy: InstallPolicy, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A type whose module is not in this version of skyrun: no pip extra can add it, so
    # nothing is installed (never_asked fails if the prompt is even shown).
    monkeypatch.setitem(
        registry.WORKER_TYPES, "future", ("skyrun.integrations.future.worker", "Worker", "gcp")
    )
    with pytest.raises(WorkerTypeUnavailable, match="not part of skyrun"):
        load_worker_type("future", policy, interactive=True, confirm=never_asked)


def test_an_unknown_type_lists_the_known_ones() -> None:
    with pytest.raises(UnknownWorkerType, match="process"):
        load_worker_type("kubernetes", InstallPolicy.NEVER, interactive=False, confirm=never_asked)
