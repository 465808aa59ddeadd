"""Memorable flow-run names ("brisk-otter-042"), derived from the run's id."""

from __future__ import annotations

import uuid

_ADJECTIVES = [
    "amber",
    "brisk",
    "calm",
    "deft",
    "eager",
    "fair",
    "glad",
    "keen",
    "lucid",
    "merry",
    "noble",
    "plucky",
    "quiet",
    "rapid",
    "sunny",
    "tidy",
    "vivid",
    "witty",
    "zesty",
    "bold",
]
_NOUNS = [
    "badger",
    "comet",
    "dolphin",
    "falcon",
    "gecko",
    "heron",
    "ibis",
    "jaguar",
    "koala",
    "lynx",
    "marten",
    "newt",
    "otter",
    "puffin",
    "quail",
    "raven",
    "stork",
    "tapir",
    "wren",
]


def generate_run_name(run_id: uuid.UUID) -> str:
    """A memorable name derived from the id (stable, no global random state)."""
    n = run_id.int
    return f"{_ADJECTIVES[n % len(_ADJECTIVES)]}-{_NOUNS[(n >> 8) % len(_NOUNS)]}-{(n >> 16) % 1000:03d}"
