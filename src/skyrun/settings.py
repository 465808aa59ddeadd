"""Every skyrun setting: one pydantic-settings model read from SKYRUN_* variables.

Precedence, highest first: environment variables, the profile file
(`$SKYRUN_HOME/profile.json`, written by `skyrun config set`), defaults.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from pydantic import Field
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

ENV_PREFIX = "SKYRUN_"


def home_dir() -> Path:
    """SKYRUN_HOME, read directly so the profile file can be found before settings load."""
    return Path(os.environ.get("SKYRUN_HOME") or Path.home() / ".skyrun").expanduser()


def profile_path() -> Path:
    return home_dir() / "profile.json"


def read_profile() -> dict[str, str]:
    """The profile's settings as {SKYRUN_NAME: value}; empty when there is none."""
    path = profile_path()
    if not path.exists():
        return {}
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path} is not valid JSON ({exc}); fix or delete it") from exc
    if not isinstance(data, dict):
        raise ValueError(f"{path} must hold a JSON object of SKYRUN_* settings")
    return {str(k): str(v) for k, v in data.items()}


def write_profile(values: dict[str, str]) -> Path:
    path = profile_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(values, indent=2, sort_keys=True) + "\n")
    tmp.replace(path)
    return path


class _ProfileSource(PydanticBaseSettingsSource):
    """Settings from the profile file, below environment variables."""

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False

    def __call__(self) -> dict[str, Any]:
        profile = read_profile()
        prefix_len = len(ENV_PREFIX)
        return {
            key[prefix_len:].lower(): value
            for key, value in profile.items()
            if key.startswith(ENV_PREFIX)
            and key[prefix_len:].lower() in self.settings_cls.model_fields
        }


class Settings(BaseSettings):
    """skyrun's configuration. Each field is read from SKYRUN_<FIELD NAME>."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="ignore")

    home: Path = Field(default_factory=home_dir, description="Where skyrun keeps its files.")
    api_url: str | None = Field(
        default=None,
        description="A skyrun server's API, e.g. http://127.0.0.1:4200/api. "
        "Unset: flows record to the embedded SQLite database under SKYRUN_HOME.",
    )
    api_key: str | None = Field(default=None, description="Sent as a bearer token to api_url.")
    database_url: str | None = Field(
        default=None,
        description="SQLAlchemy async URL; default sqlite+aiosqlite:///$SKYRUN_HOME/skyrun.db.",
    )
    server_host: str = "127.0.0.1"
    server_port: int = 4200
    server_auth_enabled: bool = Field(
        default=False, description="Require an API key on every request to the server."
    )
    server_allow_insecure: bool = Field(
        default=False,
        description="Allow listening beyond loopback without auth (explicit, insecure).",
    )
    encryption_key: str | None = Field(
        default=None, description="Fernet key for block secrets; generated on first use if unset."
    )
    logging_level: str = "INFO"
    flush_interval: float = Field(
        default=0.5, description="Seconds between background flushes of task runs and logs."
    )
    client_timeout: float = 30.0
    client_retries: int = 3
    # Services (intervals in seconds).
    scheduler_interval: float = 10.0
    housekeeping_interval: float = 5.0
    scheduler_horizon_runs: int = 100
    scheduler_horizon_days: float = 100.0
    late_after_seconds: float = 15.0
    worker_heartbeat_interval: float = 10.0
    worker_offline_after_missed: int = 3
    cancelling_timeout_seconds: float = 120.0
    claim_lease_seconds: float = 60.0

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, env_settings, _ProfileSource(settings_cls))

    @property
    def resolved_database_url(self) -> str:
        return self.database_url or f"sqlite+aiosqlite:///{self.home / 'skyrun.db'}"


def setting_names() -> list[str]:
    """Every setting's environment-variable name, for `skyrun config`."""
    return [ENV_PREFIX + name.upper() for name in Settings.model_fields]


def get_settings() -> Settings:
    """Read settings now (environment and profile can change between calls)."""
    return Settings()
