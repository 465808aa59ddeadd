"""The `secret` block type: one secret value (a token, a password)."""

from __future__ import annotations

from typing import ClassVar

from skyrun.blocks.base import Block, SecretField


class Secret(Block):
    """A secret string, used in templates as `{{ skyrun.blocks.secret.NAME.value }}`."""

    block_type: ClassVar[str] = "secret"
    title: ClassVar[str] = "Secret"
    description: ClassVar[str] = "One secret value, encrypted at rest and masked in reads."

    value: str = SecretField(..., description="The secret value.")
