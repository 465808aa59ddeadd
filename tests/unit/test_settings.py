"""Settings: passed values over SKYRUN_* variables over the profile file over defaults."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from skyrun.settings import Settings, SettingsError, setting_names


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name in setting_names():
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("SKYRUN_HOME", str(tmp_path))
    return tmp_path


def test_defaults(home: Path) -> None:
    settings = Settings()
    assert settings.home == home
    assert settings.api_url is None
    assert settings.server_port == 4200
    assert settings.resolved_database_url == f"sqlite+aiosqlite:///{home / 'skyrun.db'}"


def test_precedence_passed_over_environment_over_profile(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    profile = {"SKYRUN_CLIENT_TIMEOUT": "12", "SKYRUN_SERVER_PORT": "4300", "SKYRUN_NOPE": "x"}
    (home / "profile.json").write_text(json.dumps(profile))
    monkeypatch.setenv("SKYRUN_SERVER_PORT", "4400")
    monkeypatch.setenv("skyrun_client_retries", "5")  # names are case-insensitive
    settings = Settings()
    assert settings.client_timeout == 12.0  # profile
    assert settings.server_port == 4400  # environment over profile
    assert settings.client_retries == 5
    assert Settings(server_port=4500).server_port == 4500  # passed over both
    assert Settings(api_url=None).api_url is None


def test_values_are_parsed_by_type(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SKYRUN_SERVER_AUTH_ENABLED", "true")
    monkeypatch.setenv("SKYRUN_FLUSH_INTERVAL", "0.25")
    settings = Settings()
    assert settings.server_auth_enabled is True
    assert settings.flush_interval == 0.25


def test_a_bad_value_names_the_setting_and_its_source(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SKYRUN_SERVER_PORT", "abc")
    with pytest.raises(SettingsError) as from_env:
        Settings()
    assert str(from_env.value).startswith(
        "invalid setting SKYRUN_SERVER_PORT='abc' (from the environment): "
    )
    assert "valid integer" in str(from_env.value)

    monkeypatch.delenv("SKYRUN_SERVER_PORT")
    (home / "profile.json").write_text(json.dumps({"SKYRUN_CLIENT_RETRIES": "many"}))
    with pytest.raises(
        SettingsError, match=r"SKYRUN_CLIENT_RETRIES='many' \(from .*profile\.json\)"
    ):
        Settings()
    with pytest.raises(SettingsError, match="passed to Settings"):
        Settings(client_retries=3, flush_interval="soon")


def test_a_broken_profile_says_which_file(home: Path) -> None:
    (home / "profile.json").write_text("{not json")
    with pytest.raises(ValueError, match=r"profile\.json is not valid JSON"):
        Settings()


def test_a_given_home_reads_its_own_profile_only(
    home: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    # SKYRUN_HOME's profile (a developer's, say) must not leak into Settings(home=...).
    (home / "profile.json").write_text(json.dumps({"SKYRUN_API_URL": "http://elsewhere/api"}))
    other = tmp_path_factory.mktemp("other-home")
    assert Settings(home=other).api_url is None
    (other / "profile.json").write_text(json.dumps({"SKYRUN_CLIENT_RETRIES": "7"}))
    settings = Settings(home=str(other))
    assert (settings.home, settings.client_retries, settings.api_url) == (other, 7, None)
    assert Settings().api_url == "http://elsewhere/api"  # SKYRUN_HOME's own, as before
