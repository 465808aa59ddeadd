"""Errors a CLI command reports as one clear line (no traceback), exiting non-zero."""

from __future__ import annotations


class CLIError(Exception):
    """A user error the command explains itself."""
