"""Time ``import <module>`` in a fresh interpreter and print one JSON line.

Usage: ``python workload_import.py MODULE`` (``-`` for a bare interpreter).
Nothing but ``sys`` and ``time`` is imported before the measured import, so
modules the library itself needs are charged to it.
"""

import sys
import time

_module = sys.argv[1] if len(sys.argv) > 1 else "-"
_start = time.perf_counter()
if _module != "-":
    __import__(_module)
_import_s = time.perf_counter() - _start

from workload_common import current_rss_mib, emit, peak_rss_mib  # noqa: E402

emit(
    {
        "module": _module,
        "import_s": _import_s,
        "rss_mib": current_rss_mib(),
        "peak_rss_mib": peak_rss_mib(),
    }
)
