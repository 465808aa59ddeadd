"""What the server answers when a client proposes a state."""

from __future__ import annotations

import enum

from pydantic import BaseModel

from skyrun.schemas.states import State, StateCreate


class Decision(enum.StrEnum):
    """The outcome of a proposed transition.

    ACCEPT: the proposed (or a substituted) state is now the run's state.
    REJECT: the run keeps its current state; the proposal was not allowed.
    WAIT: try again after `delay_seconds` (e.g. the run is not due yet).
    ABORT: the caller must stop working on this run (e.g. another worker has it).
    """

    ACCEPT = "ACCEPT"
    REJECT = "REJECT"
    WAIT = "WAIT"
    ABORT = "ABORT"


class SetStateRequest(BaseModel):
    state: StateCreate
    force: bool = False


class SetStateResponse(BaseModel):
    decision: Decision
    state: State | None
    reason: str | None = None
    delay_seconds: float | None = None
