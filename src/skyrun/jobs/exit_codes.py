"""Exit codes with a meaning between `skyrun flow-run execute` and whoever launched it."""

from __future__ import annotations

# `skyrun flow-run execute` exits with this code when the server refused to let it
# start the run because another process is handling it (a claim that was lost and
# taken over): the worker then leaves the run to its new owner instead of crashing it.
ABORTED_EXIT_CODE = 75
