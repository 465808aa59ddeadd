"""Where the key for block secrets comes from: the setting, a key file made once, or a
PostgreSQL server that refuses to start without the setting."""

from __future__ import annotations

import stat
import subprocess
import threading
from pathlib import Path

import httpx
import pytest
from cryptography.fernet import Fernet

from processes import SKYRUN, clean_env
from skyrun.server.app import create_app
from skyrun.server.encryption import EncryptionKeyMissing, key_file_key
from skyrun.settings import Settings, SettingsError

SUBPROCESS_TIMEOUT = 60  # a guard against a hang, not a timing assertion


@pytest.mark.postgres
@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
def test_a_postgresql_server_without_the_key_refuses_to_start(
    tmp_path: Path, database_url: str
) -> None:
    env = clean_env(tmp_path, SKYRUN_DATABASE_URL=database_url)
    finished = subprocess.run(
        [str(SKYRUN), "server", "start", "--port", "1"],
        env=env,
        capture_output=True,
        text=True,
        timeout=SUBPROCESS_TIMEOUT,
    )
    assert finished.returncode == 1
    assert finished.stderr.startswith("Error: refusing to start: SKYRUN_ENCRYPTION_KEY is not set")
    assert "every replica must use the same key" in finished.stderr
    assert "Traceback" not in finished.stderr
    assert not (tmp_path / "encryption.key").exists()


async def test_the_app_refuses_postgresql_without_the_key_before_serving(
    settings: Settings,
) -> None:
    pg = settings.model_copy(update={"database_url": "postgresql+asyncpg://nobody@127.0.0.1:1/x"})
    app = create_app(pg, run_services=False)
    with pytest.raises(EncryptionKeyMissing, match="SKYRUN_ENCRYPTION_KEY is not set"):
        async with app.router.lifespan_context(app):
            pass


def test_a_bad_key_setting_names_itself(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SKYRUN_ENCRYPTION_KEY", "not-a-key")
    with pytest.raises(SettingsError) as caught:
        Settings(home=settings.home)
    assert "SKYRUN_ENCRYPTION_KEY='not-a-key' (from the environment)" in str(caught.value)
    assert "is not a Fernet key" in str(caught.value)
    good = Fernet.generate_key().decode()
    monkeypatch.setenv("SKYRUN_ENCRYPTION_KEY", good)
    assert Settings(home=settings.home).encryption_key == good


def test_processes_racing_to_make_the_key_file_share_one_key(tmp_path: Path) -> None:
    home = tmp_path / "home"
    start = threading.Barrier(8)
    keys: list[str] = []

    def make() -> None:
        start.wait()
        keys.append(key_file_key(home))

    threads = [threading.Thread(target=make) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(keys) == 8 and len(set(keys)) == 1
    key_file = home / "encryption.key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert stat.S_IMODE(home.stat().st_mode) == 0o700
    assert [p.name for p in home.iterdir()] == ["encryption.key"]  # no temporary file left


@pytest.mark.postgres
@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
async def test_an_embedded_process_on_postgresql_without_the_key_is_told_why(
    api: httpx.AsyncClient,
) -> None:
    # The embedded app runs no lifespan check; the first secret says what is missing.
    made = await api.post(
        "/api/blocks", json={"block_type": "secret", "name": "s", "data": {"value": "x"}}
    )
    assert made.status_code == 409
    assert made.json()["detail"].startswith("SKYRUN_ENCRYPTION_KEY is not set")
    assert (await api.get("/api/blocks")).json()["count"] == 0
