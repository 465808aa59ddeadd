"""The one error every deploy step raises for what the user must fix."""

from __future__ import annotations


class StepError(Exception):
    """A step is unknown, malformed or failed; the message names the step and what to do."""
