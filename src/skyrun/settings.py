"""Every skyrun setting: one pydantic model read from SKYRUN_* variables.

Precedence, highest first: values passed to `Settings(...)`, environment
variables (names are case-insensitive), the profile file
(`$SKYRUN_HOME/profile.json`, written by `skyrun config set`), defaults.
`Settings(home=H)` reads the profile of `H` only, never that of `$SKYRUN_HOME`.

The sources are read here rather than through pydantic-settings: it would cost
every flow process ~1.3 MiB and 20 ms of imports (argparse, dotenv, cloud
secret providers) for two dictionary lookups.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError

ENV_PREFIX = "SKYRUN_"


def home_dir() -> Path:
    """SKYRUN_HOME, read directly so the profile file can be found before settings load."""
    return Path(os.environ.get("SKYRUN_HOME") or Path.home() / ".skyrun").expanduser()


def profile_path(home: Path | None = None) -> Path:
    """The profile file of `home` (default: SKYRUN_HOME's)."""
    return (home or home_dir()) / "profile.json"


def read_profile(home: Path | None = None) -> dict[str, str]:
    """The profile's settings as {SKYRUN_NAME: value}; empty when there is none."""
    path = profile_path(home)
    if not path.exists():
        return {}
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path} is not valid JSON ({exc}); fix or delete it") from exc
    if not isinstance(data, dict):
        raise ValueError(f"{path} must hold a JSON object of SKYRUN_* settings")
    return {str(k): str(v) for k, v in data.items()}


class SettingsError(ValueError):
    """A setting's value is not of its kind; the message names it and where it came from."""


def ensure_private_dir(path: Path, setting: str = "SKYRUN_HOME") -> Path:
    """`path` as a directory, created readable by its owner only (0700) if missing.

    Raises:
        SettingsError: it cannot be created; the message names `setting`.
    """
    try:
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError as exc:
        raise SettingsError(
            f"cannot create the directory {path} ({exc.strerror or exc}); "
            f"set {setting} to a directory you can write"
        ) from None
    return path


def write_profile(values: dict[str, str]) -> Path:
    """Write the profile atomically, readable by its owner only: it may hold the API key."""
    path = profile_path()
    ensure_private_dir(path.parent)
    tmp = path.with_suffix(".tmp")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as file:
            os.fchmod(file.fileno(), 0o600)  # in case an older .tmp was left behind
            file.write(json.dumps(values, indent=2, sort_keys=True) + "\n")
        tmp.replace(path)
    except OSError as exc:
        raise SettingsError(
            f"cannot write {path} ({exc.strerror or exc}); set SKYRUN_HOME to a directory "
            "you can write"
        ) from None
    return path


def _from_environment_and_profile(
    fields: Iterable[str], home: Path | None
) -> tuple[dict[str, str], dict[str, str]]:
    """({field name: raw value}, {field name: its source}) from SKYRUN_* environment
    variables over the profile of `home` (default: SKYRUN_HOME's)."""
    known = set(fields)
    values: dict[str, str] = {}
    sources: dict[str, str] = {}
    profile = read_profile(home)
    for source, where in ((profile, str(profile_path(home))), (os.environ, "the environment")):
        for key, value in source.items():
            upper = key.upper()
            if upper.startswith(ENV_PREFIX) and (name := upper[len(ENV_PREFIX) :].lower()) in known:
                values[name] = value
                sources[name] = where
    return values, sources


def _describe(exc: ValidationError, values: dict[str, Any], sources: dict[str, str]) -> str:
    problems = []
    for error in exc.errors():
        name = str(error["loc"][0]) if error["loc"] else ""
        where = sources.get(name, "the value passed to Settings")
        problems.append(
            f"{ENV_PREFIX}{name.upper()}={values.get(name)!r} (from {where}): {error['msg']}"
        )
    return "invalid setting " + "; ".join(problems)


LOGGING_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
_DAY = 24 * 3600.0


def _http_url(value: str | None) -> str | None:
    if value is not None and not value.lower().startswith(("http://", "https://")):
        raise ValueError(
            "must be an http:// or https:// URL of a skyrun API, such as http://127.0.0.1:4200/api"
        )
    return value


def _database_url(value: str | None) -> str | None:
    if value is not None and "://" not in value:
        raise ValueError(
            "must be a SQLAlchemy URL such as postgresql+asyncpg://user@host/db or "
            "sqlite+aiosqlite:///path/to/skyrun.db"
        )
    return value


def check_fernet_key(value: str) -> str:
    """`value` if it is a Fernet key (32 bytes, URL-safe base64).

    Checked without cryptography, so a bad key fails when settings load, not at the
    first secret.

    Raises:
        ValueError: It is not one; the message says how to make one.
    """
    try:
        raw = base64.urlsafe_b64decode(value.encode("ascii"))
    except (binascii.Error, UnicodeEncodeError, ValueError):
        raw = b""
    if len(raw) != 32:
        raise ValueError(
            "is not a Fernet key (32 bytes, URL-safe base64); make one with python -c "
            "'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())'"
        )
    return value


def _fernet_key(value: str | None) -> str | None:
    return None if value is None else check_fernet_key(value)


def _logging_level(value: str) -> str:
    if value.upper() not in LOGGING_LEVELS:
        raise ValueError(f"must be one of {', '.join(LOGGING_LEVELS)}")
    return value.upper()


def _seconds(default: float, *, high: float, allow_zero: bool = False) -> Any:
    """A field of seconds (or days): finite, above 0 (or 0 too) and at most `high`."""
    if allow_zero:
        return Field(default=default, ge=0, le=high, allow_inf_nan=False)
    return Field(default=default, gt=0, le=high, allow_inf_nan=False)


class Settings(BaseModel):
    """skyrun's configuration. Each field is read from SKYRUN_<FIELD NAME>.

    Every value is checked when settings load: a bad one is a SettingsError naming
    its variable, its value and where it came from.
    """

    model_config = ConfigDict(extra="ignore")

    home: Path = Field(default_factory=home_dir, description="Where skyrun keeps its files.")
    api_url: Annotated[str | None, AfterValidator(_http_url)] = Field(
        default=None,
        description="A skyrun server's API, e.g. http://127.0.0.1:4200/api. "
        "Unset: flows record to the embedded SQLite database under SKYRUN_HOME.",
    )
    api_key: str | None = Field(default=None, description="Sent as a bearer token to api_url.")
    database_url: Annotated[str | None, AfterValidator(_database_url)] = Field(
        default=None,
        description="SQLAlchemy async URL; default sqlite+aiosqlite:///$SKYRUN_HOME/skyrun.db.",
    )
    server_host: str = Field(default="127.0.0.1", min_length=1)
    server_port: int = Field(default=4200, ge=1, le=65535)
    server_auth_enabled: bool = Field(
        default=False, description="Require an API key on every request to the server."
    )
    server_max_body_bytes: int = Field(
        default=16 * 2**20,
        ge=2**16,
        le=2**31,
        description="The largest request body the server reads, in bytes (larger: 413).",
    )
    server_allow_insecure: bool = Field(
        default=False,
        description="Allow listening beyond loopback without auth (explicit, insecure).",
    )
    encryption_key: Annotated[str | None, AfterValidator(_fernet_key)] = Field(
        default=None,
        description="Fernet key that encrypts block secrets. Unset: on SQLite, generated once "
        "into SKYRUN_HOME/encryption.key; a PostgreSQL server refuses to start without it "
        "(every replica must share one key).",
    )
    logging_level: Annotated[str, AfterValidator(_logging_level)] = Field(
        default="INFO", description=f"One of {', '.join(LOGGING_LEVELS)}."
    )
    flush_interval: float = Field(
        default=0.5,
        gt=0,
        le=3600,
        allow_inf_nan=False,
        description="Seconds between background flushes of task runs and logs.",
    )
    recorder_flush_timeout: float = Field(
        default=30.0,
        ge=0,
        le=_DAY,
        allow_inf_nan=False,
        description="Seconds a flow run's end (and the process's exit) keeps retrying to send "
        "its task runs and logs before saving them to a spool file under SKYRUN_HOME.",
    )
    client_timeout: float = _seconds(30.0, high=_DAY)
    client_retries: int = Field(
        default=3,
        ge=0,
        le=100,
        description="Tries after the first for a request the API did not answer, in a "
        "process that has not reached the API yet (a command against a stopped server "
        "fails at once).",
    )
    client_retry_seconds: float = Field(
        default=60.0,
        ge=0,
        le=_DAY,
        allow_inf_nan=False,
        description="Once a process has reached the API, how long it keeps retrying a "
        "request that got no answer (when a repeat is safe): a server restart does not "
        "fail the flows and workers talking to it. 0: SKYRUN_CLIENT_RETRIES tries only.",
    )
    final_state_timeout: float = Field(
        default=300.0,
        ge=0,
        le=7 * _DAY,
        allow_inf_nan=False,
        description="Seconds a flow run's final state (and a worker's CRASHED or CANCELLED "
        "report) keeps being retried while the server does not answer.",
    )
    flow_run_heartbeat_interval: float = Field(
        default=10.0,
        gt=0,
        le=3600,
        allow_inf_nan=False,
        description="Seconds between a running flow's heartbeats (which also tell it that "
        "it is being cancelled).",
    )
    flow_run_heartbeat_timeout: float = Field(
        default=90.0,
        gt=0,
        le=7 * _DAY,
        allow_inf_nan=False,
        description="Server: a RUNNING flow run with no heartbeat for this long is CRASHED.",
    )
    # Services (intervals in seconds).
    scheduler_interval: float = _seconds(10.0, high=_DAY)
    housekeeping_interval: float = _seconds(5.0, high=_DAY)
    scheduler_horizon_runs: int = Field(default=100, ge=1, le=10_000)
    scheduler_horizon_days: float = _seconds(100.0, high=3660)
    late_after_seconds: float = _seconds(15.0, high=7 * _DAY, allow_zero=True)
    # Bounded like a heartbeat and a lease a worker sends (schemas/work_pools.py).
    worker_heartbeat_interval: float = _seconds(10.0, high=3600.0)
    worker_offline_after_missed: int = Field(default=3, ge=1, le=1000)
    cancelling_timeout_seconds: float = _seconds(120.0, high=7 * _DAY)
    cloud_run_start_timeout: float = Field(
        default=600.0,
        gt=0,
        le=_DAY,
        allow_inf_nan=False,
        description="cloud-run worker: seconds an execution may take to start before its run "
        "is CRASHED (an image that cannot be pulled, no capacity).",
    )
    cloud_run_sweep_interval: float = Field(
        default=300.0,
        gt=0,
        le=_DAY,
        allow_inf_nan=False,
        description="cloud-run worker: seconds between sweeps that delete finished skyrun jobs "
        "left behind in the pool's region.",
    )
    idempotency_key_retention_seconds: float = Field(
        default=86400.0,
        gt=0,
        le=366 * _DAY,
        allow_inf_nan=False,
        description="How long the server remembers a request's idempotency key (and its answer).",
    )
    claim_lease_seconds: float = Field(
        default=60.0,
        gt=0,
        le=_DAY,
        allow_inf_nan=False,
        description="How long a claimed run stays PENDING for its worker without word from "
        "it; the worker's heartbeats extend the lease of the runs it is still launching.",
    )
    claim_lease_expiries: int = Field(
        default=3,
        ge=1,
        le=1000,
        description="After this many expired leases, a run is CRASHED instead of "
        "rescheduled (a run that keeps losing its workers while they launch it).",
    )
    database_pool_size: int = Field(
        default=10, ge=1, le=1000, description="PostgreSQL connections kept open per process."
    )
    database_max_overflow: int = Field(
        default=20,
        ge=0,
        le=1000,
        description="PostgreSQL connections opened beyond database_pool_size under load.",
    )

    def __init__(self, **values: Any) -> None:
        home = values.get("home")
        found, sources = _from_environment_and_profile(
            type(self).model_fields,
            Path(home).expanduser() if isinstance(home, str | os.PathLike) else None,
        )
        for name in values:
            sources.pop(name, None)
        merged = {**found, **values}
        try:
            super().__init__(**merged)
        except ValidationError as exc:
            raise SettingsError(_describe(exc, merged, sources)) from None

    @property
    def resolved_database_url(self) -> str:
        return self.database_url or f"sqlite+aiosqlite:///{self.home / 'skyrun.db'}"


def setting_names() -> list[str]:
    """Every setting's environment-variable name, for `skyrun config`."""
    return [ENV_PREFIX + name.upper() for name in Settings.model_fields]


def get_settings() -> Settings:
    """Read settings now (environment and profile can change between calls)."""
    return Settings()
