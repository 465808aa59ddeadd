"""Block references in job variables: `TYPE/NAME` turned into the block's data.

A job template's variable that names a block type in its schema
(`{"type": "string", "block_type": "gcp-credentials"}`, a skyrun extension key) takes
a block reference such as `gcp-credentials/my-creds`; before the job renders, the
worker replaces it with the block's data (secrets included). A value that is already
an object is the data itself and is left as it is.

Pure logic, no client: the lookup is given (a `templating.BlockLookup`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from skyrun.templating import BlockLookup

BLOCK_TYPE_KEY = "block_type"


class BlockReferenceError(ValueError):
    """A block reference that is malformed, of the wrong type, or names no block."""


def parse_block_reference(text: str) -> tuple[str, str]:
    """`TYPE/NAME` as (type slug, block name).

    Raises:
        BlockReferenceError: `text` is not of that form.
    """
    block_type, slash, name = text.partition("/")
    if not slash or not block_type or not name or "/" in name:
        raise BlockReferenceError(
            f"{text!r} is not a block reference: write TYPE/NAME, e.g. gcp-credentials/my-creds"
        )
    return block_type, name


def resolve_block_references(
    values: Mapping[str, Any], variables_schema: Mapping[str, Any], lookup: BlockLookup
) -> dict[str, Any]:
    """A copy of job variables with each block reference replaced by the block's data.

    Args:
        values: Job variables (name -> value).
        variables_schema: The job template's `variables` schema; a property with a
            `block_type` takes a reference to a block of that type.
        lookup: (type slug, name) -> the block's data; KeyError when there is none.

    Raises:
        BlockReferenceError: A reference is malformed, names a block of another type, or
            names no block; the message names the job variable.
    """
    properties = variables_schema.get("properties")
    resolved = dict(values)
    if not isinstance(properties, Mapping):
        return resolved
    for name, value in values.items():
        schema = properties.get(name)
        if not isinstance(schema, Mapping) or not isinstance(value, str):
            continue
        expected = schema.get(BLOCK_TYPE_KEY)
        if not isinstance(expected, str):
            continue
        try:
            block_type, block_name = parse_block_reference(value)
        except BlockReferenceError as exc:
            raise BlockReferenceError(f"job variable {name!r}: {exc}") from None
        if block_type != expected:
            raise BlockReferenceError(
                f"job variable {name!r} takes a {expected} block, not {value!r}: "
                f"write {expected}/NAME"
            )
        try:
            resolved[name] = dict(lookup(block_type, block_name))
        except KeyError:
            raise BlockReferenceError(
                f"job variable {name!r}: block {value} does not exist; create it with "
                f"'skyrun block create {block_type} {block_name} ...'"
            ) from None
    return resolved
