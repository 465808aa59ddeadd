"""Run states: the types, the named sub-states and the State model."""

from __future__ import annotations

import enum
import uuid
from datetime import UTC, datetime
from typing import Annotated

from pydantic import AfterValidator, BaseModel, Field, WithJsonSchema

from skyrun.schemas.limits import JSONObject, Message


class StateType(enum.StrEnum):
    """The kind of a state; a run's state name refines it (e.g. SCHEDULED/Late)."""

    SCHEDULED = "SCHEDULED"
    PENDING = "PENDING"
    RUNNING = "RUNNING"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"
    CANCELLING = "CANCELLING"
    CANCELLED = "CANCELLED"
    CRASHED = "CRASHED"
    PAUSED = "PAUSED"


TERMINAL_TYPES = frozenset(
    {StateType.COMPLETED, StateType.FAILED, StateType.CANCELLED, StateType.CRASHED}
)

# The default name of each state type; named sub-states use other names.
DEFAULT_NAMES: dict[StateType, str] = {
    StateType.SCHEDULED: "Scheduled",
    StateType.PENDING: "Pending",
    StateType.RUNNING: "Running",
    StateType.COMPLETED: "Completed",
    StateType.FAILED: "Failed",
    StateType.CANCELLING: "Cancelling",
    StateType.CANCELLED: "Cancelled",
    StateType.CRASHED: "Crashed",
    StateType.PAUSED: "Paused",
}

# Named sub-states used by the engine, workers and services.
LATE = "Late"
AWAITING_RETRY = "AwaitingRetry"
RETRYING = "Retrying"
SUBMITTING = "Submitting"
TIMED_OUT = "TimedOut"
# A state's name is stored in a VARCHAR(50).
MAX_STATE_NAME_LENGTH = 50


def utcnow() -> datetime:
    """Now, as an aware UTC datetime."""
    return datetime.now(UTC)


def assume_utc(value: datetime) -> datetime:
    """`value` itself if it has a time zone; otherwise the same wall-clock time in UTC."""
    return value.replace(tzinfo=UTC) if value.utcoffset() is None else value


# Requests' datetimes stay a day (a year at the top) inside what Python can represent in
# UTC, so storing them and adding leases or intervals to them never overflows.
EARLIEST_TIMESTAMP = datetime(1, 1, 2, tzinfo=UTC)
LATEST_TIMESTAMP = datetime(9998, 12, 31, tzinfo=UTC)


def bounded_utc(value: datetime) -> datetime:
    """`value` (taken as UTC without a zone), refused outside the representable range."""
    value = assume_utc(value)
    try:
        in_utc = value.astimezone(UTC)
    except OverflowError:
        in_utc = None
    if in_utc is None or not EARLIEST_TIMESTAMP <= in_utc <= LATEST_TIMESTAMP:
        raise ValueError(
            f"datetime {value.isoformat()} is out of range: give one between "
            f"{EARLIEST_TIMESTAMP.date()} and {LATEST_TIMESTAMP.date()} (UTC)"
        )
    return value


# A datetime a client sends. The database keeps aware UTC datetimes only, and a client
# that leaves out the zone (`2030-01-01T09:00:00`) almost always means UTC.
UTCTimestamp = Annotated[
    datetime,
    AfterValidator(bounded_utc),
    WithJsonSchema(
        {
            "type": "string",
            "format": "date-time",
            "description": "ISO 8601; a time without a time zone is taken as UTC.",
        }
    ),
]


class StateCreate(BaseModel):
    """A proposed state: what a client asks a run to move to."""

    id: uuid.UUID | None = Field(
        default=None,
        description="The state's own id, chosen by the client: a proposal repeated with the "
        "same id (after a lost reply) gets the first answer instead of a new decision.",
    )
    type: StateType
    name: str | None = Field(default=None, min_length=1, max_length=MAX_STATE_NAME_LENGTH)
    message: Message | None = None
    timestamp: UTCTimestamp | None = None
    scheduled_time: UTCTimestamp | None = Field(
        default=None,
        description="For SCHEDULED states: when the run is due (UTC if no time zone is given).",
    )
    data: JSONObject | None = None


class State(BaseModel):
    """A state a run was in, as recorded."""

    id: uuid.UUID = Field(default_factory=uuid.uuid4)
    type: StateType
    name: str = Field(min_length=1, max_length=MAX_STATE_NAME_LENGTH)
    message: Message | None = None
    timestamp: UTCTimestamp = Field(default_factory=utcnow)
    scheduled_time: UTCTimestamp | None = None
    data: JSONObject | None = None

    @property
    def is_final(self) -> bool:
        return self.type in TERMINAL_TYPES

    @classmethod
    def from_create(cls, proposed: StateCreate, now: datetime | None = None) -> State:
        """Fill in the defaults of a proposed state."""
        return cls(
            id=proposed.id or uuid.uuid4(),
            type=proposed.type,
            name=proposed.name or DEFAULT_NAMES[proposed.type],
            message=proposed.message,
            timestamp=proposed.timestamp or now or utcnow(),
            scheduled_time=proposed.scheduled_time,
            data=proposed.data,
        )
