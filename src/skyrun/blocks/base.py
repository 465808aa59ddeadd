"""The Block base model: a type slug, a title, a JSON schema, and fields marked secret.

A block type is a pydantic model. A field is secret when its `json_schema_extra` has
`"secret": True` (`SecretField(...)` says so); the server encrypts those fields' values
at rest and masks them in reads.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

# What a read shows in place of a secret value; writing it back keeps the stored value.
MASK = "********"
SECRET_KEY = "secret"


def SecretField(default: Any = None, *, description: str) -> Any:
    """A model field whose value is a secret (encrypted at rest, masked in reads).

    Args:
        default: The field's default (`...`: required).
        description: What the field holds, shown in the type's schema.
    """
    return Field(default=default, description=description, json_schema_extra={SECRET_KEY: True})


class Block(BaseModel):
    """A block type. Subclasses set `block_type`, `title` and `description`.

    Unknown fields are refused, so a misspelt field is an error naming it.
    """

    model_config = ConfigDict(extra="forbid")

    block_type: ClassVar[str]
    title: ClassVar[str]
    description: ClassVar[str]

    @classmethod
    def secret_fields(cls) -> list[str]:
        """The names of the fields whose values are secret, in declaration order."""
        return [
            name
            for name, field in cls.model_fields.items()
            if isinstance(field.json_schema_extra, dict)
            and field.json_schema_extra.get(SECRET_KEY) is True
        ]

    @classmethod
    def json_schema(cls) -> dict[str, Any]:
        """The type's JSON schema: its fields, each secret one carrying `"secret": true`."""
        schema = cls.model_json_schema()
        schema["title"] = cls.title
        schema["description"] = cls.description
        return schema

    @classmethod
    def validate_data(cls, data: Mapping[str, Any]) -> dict[str, Any]:
        """`data` checked against the type, as it is stored (unset fields omitted).

        Raises:
            BlockDataError: The data does not fit; each problem names its field.
        """
        try:
            return cls.model_validate(dict(data)).data()
        except ValidationError as exc:
            raise BlockDataError(cls, exc) from None

    def data(self) -> dict[str, Any]:
        """The document as stored: JSON values, with the fields left unset omitted."""
        return self.model_dump(mode="json", exclude_none=True)


def mask_secrets(data: Mapping[str, Any], secret_fields: list[str]) -> dict[str, Any]:
    """A copy of `data` with each secret field that has a value shown as MASK."""
    return {
        key: MASK if key in secret_fields and value is not None else value
        for key, value in data.items()
    }


class BlockDataError(ValueError):
    """Block data that does not fit its type.

    Attributes:
        problems: (field, message) pairs; the field is "" for a problem of the whole document.
    """

    def __init__(self, block: type[Block], error: ValidationError) -> None:
        self.problems: list[tuple[str, str]] = []
        fields = ", ".join(block.model_fields)
        for item in error.errors(include_url=False):
            field = ".".join(str(part) for part in item["loc"])
            message = str(item["msg"]).removeprefix("Value error, ")
            if item["type"] == "extra_forbidden":
                message = f"unknown field; the fields of {block.block_type} are: {fields}"
            elif item["type"] == "missing":
                message = "is required"
            self.problems.append((field, message))
        super().__init__(
            f"invalid {block.block_type} block: "
            + "; ".join(
                f"{field}: {message}" if field else message for field, message in self.problems
            )
        )
