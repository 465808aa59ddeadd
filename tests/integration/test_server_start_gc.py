"""`skyrun server start` keeps start-up's objects out of garbage collections (gc.freeze):
without it a full collection every few UI pages walked them all (bench/ui_pages.py)."""

from __future__ import annotations

import gc
import os
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from typer.testing import CliRunner

from skyrun.cli import server


def test_the_server_freezes_start_up_objects_before_it_serves(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in [n for n in os.environ if n.startswith("SKYRUN_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("SKYRUN_HOME", str(tmp_path))
    served: list[int] = []

    def serve(application: Any, **_: Any) -> None:
        served.append(gc.get_freeze_count())

    monkeypatch.setattr(uvicorn, "run", serve)
    gc.unfreeze()
    try:
        result = CliRunner().invoke(server.app, ["--port", "4999"])
        assert result.exit_code == 0, result.output
        # The app and every module imported by then are frozen when uvicorn starts.
        assert served and served[0] > 10_000
    finally:
        gc.unfreeze()


def test_an_embedded_app_freezes_nothing(tmp_path: Path) -> None:
    from skyrun.server.app import create_app
    from skyrun.settings import Settings

    gc.unfreeze()
    create_app(Settings(home=tmp_path), run_services=False, work_routes_on_demand=True)
    assert gc.get_freeze_count() == 0
