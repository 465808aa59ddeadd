"""Rules for input that need no server: settings' bounds, terminal-safe text, key scopes,
the API's JSON decoding, profile and database file permissions."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

from skyrun.cli.config import check_setting_value
from skyrun.cli.errors import CLIError
from skyrun.cli.output import safe_text
from skyrun.schemas.api_keys import ApiKeyScope
from skyrun.server.api.deps import decode_json
from skyrun.server.auth import required_scope
from skyrun.server.db.engine import Database, DatabaseUnavailable
from skyrun.settings import Settings, SettingsError, setting_names, write_profile


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name in setting_names():
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("SKYRUN_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


@pytest.mark.parametrize(
    ("name", "value", "words"),
    [
        ("SKYRUN_CLIENT_RETRIES", "-5", "greater than or equal to 0"),
        ("SKYRUN_FLUSH_INTERVAL", "-1", "greater than 0"),
        ("SKYRUN_FLUSH_INTERVAL", "nan", "finite"),
        ("SKYRUN_CLIENT_TIMEOUT", "0", "greater than 0"),
        ("SKYRUN_LOGGING_LEVEL", "NOPE", "DEBUG, INFO, WARNING, ERROR, CRITICAL"),
        ("SKYRUN_API_URL", "localhost:4200", "http:// or https://"),
        ("SKYRUN_DATABASE_URL", "skyrun.db", "SQLAlchemy URL"),
        ("SKYRUN_SERVER_PORT", "99999", "65535"),
        ("SKYRUN_CLAIM_LEASE_SECONDS", "1e300", "less than or equal"),
    ],
)
def test_settings_are_bounded_and_checked(
    home: Path, monkeypatch: pytest.MonkeyPatch, name: str, value: str, words: str
) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(SettingsError) as raised:
        Settings()
    assert f"{name}={value!r} (from the environment)" in str(raised.value)
    assert words in str(raised.value)
    # `skyrun config set` refuses the same values before writing them.
    with pytest.raises(CLIError, match=name):
        check_setting_value(name, value)


def test_a_logging_level_is_taken_in_any_case(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SKYRUN_LOGGING_LEVEL", "debug")
    assert Settings().logging_level == "DEBUG"


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("clear\x1b[2J", "clear\\x1b[2J"),
        ("title\x1b]0;pwned\x07", "title\\x1b]0;pwned\\x07"),
        ("c1\x9b2J", "c1\\x9b2J"),
        ("back\rspace\x08", "back\\rspace\\x08"),
        ("bidi\u202egnp.exe", "bidi\\u202egnp.exe"),
        ("two\nlines\tand a tab", "two\\nlines\\tand a tab"),
        ("ünïcödé ✓ 名前", "ünïcödé ✓ 名前"),
    ],
)
def test_safe_text_escapes_what_a_terminal_would_obey(text: str, shown: str) -> None:
    assert safe_text(text) == shown
    multiline = safe_text(text, multiline=True)
    assert "\x1b" not in multiline and "\x9b" not in multiline and "\r" not in multiline
    if "\n" in text:
        assert multiline == text  # newlines and tabs kept where lines are expected


@pytest.mark.parametrize(
    ("method", "path", "scope"),
    [
        ("GET", "/api/flows", ApiKeyScope.READ),
        ("HEAD", "/api/flow_runs/x", ApiKeyScope.READ),
        ("POST", "/api/flow_runs/filter", ApiKeyScope.READ),
        ("POST", "/api/flow_runs", ApiKeyScope.WRITE),
        ("POST", "/api/work_pools/p/claim", ApiKeyScope.WRITE),
        ("DELETE", "/api/variables/v", ApiKeyScope.WRITE),
        ("GET", "/api/api_keys", ApiKeyScope.ADMIN),
        ("DELETE", "/api/api_keys/x", ApiKeyScope.ADMIN),
        ("POST", "/api/api_keys_like_path", ApiKeyScope.WRITE),
    ],
)
def test_required_scope(method: str, path: str, scope: ApiKeyScope) -> None:
    assert required_scope(method, path) is scope


@pytest.mark.parametrize(
    ("body", "words"),
    [
        (b'{"x": NaN}', "NaN is not a JSON number"),
        (b'{"x": [Infinity]}', "Infinity is not a JSON number"),
        (b'{"x": -Infinity}', "Infinity is not a JSON number"),
        (b'{"x": 1e400}', "Infinity is not a JSON number"),
        (b'{"x": "\xff"}', "not UTF-8"),
        (b"[" * 65 + b"]" * 65, "deeper than 64"),
        (b"[" * 200_000 + b"]" * 200_000, "nested too deeply"),
    ],
)
def test_decode_json_refuses_what_json_columns_cannot_hold(body: bytes, words: str) -> None:
    with pytest.raises(json.JSONDecodeError, match=words):
        decode_json(body)


def test_decode_json_takes_plain_json() -> None:
    assert decode_json(b'{"a": [1, 2.5, "\\u00e9", null, true]}') == {
        "a": [1, 2.5, "é", None, True]
    }
    assert decode_json(b"[" * 64 + b"]" * 64) is not None


def test_the_home_and_its_files_are_private(home: Path) -> None:
    write_profile({"SKYRUN_API_KEY": "sky_secret"})
    assert stat.S_IMODE(home.stat().st_mode) == 0o700
    assert stat.S_IMODE((home / "profile.json").stat().st_mode) == 0o600
    Database(f"sqlite+aiosqlite:///{home / 'skyrun.db'}")
    assert stat.S_IMODE((home / "skyrun.db").stat().st_mode) == 0o600


def test_an_unusable_home_or_database_url_is_one_clear_error(tmp_path: Path) -> None:
    with pytest.raises(DatabaseUnavailable, match="cannot create the directory /proc/nope"):
        Database("sqlite+aiosqlite:////proc/nope/skyrun.db")
    with pytest.raises(DatabaseUnavailable, match="SKYRUN_DATABASE_URL"):
        Database("nope://x")
