"""The bounds every request is held to: lengths, numbers, names and JSON values.

Each bound fits the column that stores the value (PostgreSQL's INTEGER is 32-bit,
names are VARCHAR(200), a log level is a SMALLINT), so bad input is a 422 that
names the limit, never a database error. Request models use these types instead
of bare `str`, `int`, `float` and `Any`.
"""

from __future__ import annotations

import math
import re
from typing import Annotated, Any

from pydantic import AfterValidator, BeforeValidator, Field, StringConstraints

from skyrun.safe_text import clean_text

MAX_NAME_LENGTH = 200
MAX_TAG_LENGTH = 200
MAX_TAGS = 100
MAX_DESCRIPTION_LENGTH = 10_000
# A state's message holds an exception's text (with a chained cause, say).
MAX_MESSAGE_LENGTH = 100_000
# A log line may be a long traceback; a line above this is cut by the SDK.
MAX_LOG_MESSAGE_LENGTH = 1_000_000
MAX_INT32 = 2**31 - 1
MAX_LIST_OFFSET = MAX_INT32
# Durations: a century. Anything larger overflows date arithmetic.
MAX_SECONDS = 100 * 366 * 24 * 3600.0
# Deeper JSON than this is refused: stored values are serialised again on the way
# out, and the serialisers have depth limits of their own (255 for pydantic-core).
MAX_JSON_DEPTH = 64

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def _safe(value: Any) -> Any:
    """Text with NUL and lone surrogates replaced by U+FFFD (skyrun/safe_text.py), before
    it is checked: the server's middleware does the same to every request, and a model
    built in the SDK (a non-UTF-8 file name in an artifact's description) must not fail."""
    return clean_text(value) if isinstance(value, str) else value


def _printable(value: str) -> str:
    """Refuse control characters in names and tags.

    A control character in a name reaches terminals (`\\x1b[2J` clears a screen)
    and logs; a newline makes one name look like two.
    """
    match = _CONTROL.search(value)
    if match:
        raise ValueError(
            f"must not contain control characters (found {match.group()!r} at "
            f"position {match.start()})"
        )
    return value


def fullmatch(pattern: re.Pattern[str], value: str) -> bool:
    """Whether all of `value` matches `pattern` (`$` would also match before a final newline)."""
    return pattern.fullmatch(value) is not None


_SAFE = BeforeValidator(_safe)
Name = Annotated[
    str,
    _SAFE,
    StringConstraints(min_length=1, max_length=MAX_NAME_LENGTH),
    AfterValidator(_printable),
]
Tag = Annotated[
    str,
    _SAFE,
    StringConstraints(min_length=1, max_length=MAX_TAG_LENGTH),
    AfterValidator(_printable),
]
Tags = Annotated[list[Tag], Field(max_length=MAX_TAGS)]
Description = Annotated[str, _SAFE, StringConstraints(max_length=MAX_DESCRIPTION_LENGTH)]
Message = Annotated[str, _SAFE, StringConstraints(max_length=MAX_MESSAGE_LENGTH)]
LogMessage = Annotated[str, _SAFE, StringConstraints(max_length=MAX_LOG_MESSAGE_LENGTH)]

Count = Annotated[int, Field(ge=0, le=MAX_INT32)]
Seconds = Annotated[float, Field(ge=0, le=MAX_SECONDS, allow_inf_nan=False)]
PositiveSeconds = Annotated[float, Field(gt=0, le=MAX_SECONDS, allow_inf_nan=False)]


def check_json_value(value: Any) -> Any:
    """`value` itself, if it is plain JSON: finite numbers, nested at most MAX_JSON_DEPTH.

    NaN and infinities are not JSON (a JSON column stores them as null, or not at
    all), and Python's own decoder reads `1e400` as infinity.
    """
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, float):
            if not math.isfinite(item):
                found = "NaN" if math.isnan(item) else "Infinity"
                raise ValueError(
                    f"{found} is not a JSON number (nor is 1e400, which overflows to "
                    "Infinity); send a finite number, a string or null"
                )
        elif isinstance(item, dict | list):
            if depth > MAX_JSON_DEPTH:
                raise ValueError(f"JSON nested deeper than {MAX_JSON_DEPTH} levels")
            children = item.values() if isinstance(item, dict) else item
            stack.extend(
                (child, depth + 1) for child in children if isinstance(child, dict | list | float)
            )
    return value


JSONValue = Annotated[Any, AfterValidator(check_json_value)]
JSONObject = Annotated[dict[str, Any], AfterValidator(check_json_value)]
