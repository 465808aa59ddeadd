"""Parameters: validated against the function's type hints, and their JSON schema."""

from __future__ import annotations

import inspect
import math
import re
from collections.abc import Callable, Iterator
from typing import Any, get_type_hints

from pydantic import BaseModel, ConfigDict, ValidationError, create_model
from pydantic_core import to_jsonable_python


class ParameterError(ValueError):
    """A flow was called with parameters that do not fit its signature."""


def _model_for(fn: Callable[..., Any]) -> type[BaseModel]:
    signature = inspect.signature(fn)
    try:
        hints = get_type_hints(fn)
    except Exception:
        hints = {}
    fields: dict[str, Any] = {}
    for name, param in signature.parameters.items():
        if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
            continue
        annotation = hints.get(name, Any)
        default = ... if param.default is inspect.Parameter.empty else param.default
        fields[name] = (annotation, default)
    return create_model(
        f"{fn.__name__}_parameters",
        __config__=ConfigDict(arbitrary_types_allowed=True),
        **fields,
    )


class ParameterModel:
    """Binds and validates a function's call arguments."""

    def __init__(self, fn: Callable[..., Any]) -> None:
        self.fn = fn
        self.signature = inspect.signature(fn)
        self.model = _model_for(fn)
        self._validated_names = set(self.model.model_fields)

    def bind(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, Any]:
        """The call's arguments by parameter name, defaults applied."""
        try:
            bound = self.signature.bind(*args, **kwargs)
        except TypeError as exc:
            raise ParameterError(f"{self.fn.__name__}(): {exc}") from exc
        bound.apply_defaults()
        return dict(bound.arguments)

    def validate(self, parameters: dict[str, Any]) -> dict[str, Any]:
        """Coerce values to their annotated types; a clear ParameterError otherwise."""
        to_check = {k: v for k, v in parameters.items() if k in self._validated_names}
        unknown = set(parameters) - self._validated_names - self._var_names()
        if unknown:
            raise ParameterError(
                f"{self.fn.__name__}() got unknown parameter(s): {', '.join(sorted(unknown))}"
            )
        try:
            validated = self.model.model_validate(to_check)
        except ValidationError as exc:
            raise ParameterError(describe_validation_error(exc)) from None
        result = dict(parameters)
        result.update({name: getattr(validated, name) for name in to_check})
        return result

    def _var_names(self) -> set[str]:
        return {
            n
            for n, p in self.signature.parameters.items()
            if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
        }

    def call_args(self, parameters: dict[str, Any]) -> tuple[list[Any], dict[str, Any]]:
        """Positional and keyword arguments to call the function with `parameters`."""
        args: list[Any] = []
        kwargs: dict[str, Any] = {}
        for name, param in self.signature.parameters.items():
            if name not in parameters:
                continue
            value = parameters[name]
            if param.kind == param.VAR_POSITIONAL:
                args.extend(value)
            elif param.kind == param.VAR_KEYWORD:
                kwargs.update(value)
            elif param.kind == param.POSITIONAL_ONLY:
                args.append(value)
            else:
                kwargs[name] = value
        return args, kwargs

    def json_schema(self) -> dict[str, Any]:
        """The parameters' JSON schema, with descriptions from a Google-style docstring."""
        schema = self.model.model_json_schema()
        schema["title"] = "Parameters"
        descriptions = docstring_arg_descriptions(self.fn.__doc__ or "")
        for name, prop in schema.get("properties", {}).items():
            if name in descriptions:
                prop.setdefault("description", descriptions[name])
        return schema


def describe_validation_error(exc: ValidationError) -> str:
    parts = []
    for error in exc.errors():
        loc = ".".join(str(p) for p in error["loc"])
        value = error.get("input")
        parts.append(f"parameter '{loc}': {error['msg']} (got {value!r})")
    return "invalid parameters: " + "; ".join(parts)


_ARG_LINE = re.compile(r"^\s{2,}(\*{0,2}\w+)(?:\s*\([^)]*\))?\s*:\s*(.+)$")


def docstring_arg_descriptions(doc: str) -> dict[str, str]:
    """`name: description` pairs from the Args: section of a Google-style docstring."""
    descriptions: dict[str, str] = {}
    in_args = False
    for line in doc.splitlines():
        stripped = line.strip()
        if stripped in ("Args:", "Arguments:", "Parameters:"):
            in_args = True
            continue
        if in_args:
            if stripped.endswith(":") and not line.startswith("  "):
                break
            match = _ARG_LINE.match(line)
            if match:
                descriptions[match.group(1).lstrip("*")] = match.group(2).strip()
            elif stripped == "" and descriptions:
                break
    return descriptions


def jsonable(parameters: dict[str, Any]) -> dict[str, Any]:
    """Parameters as JSON values to record with the run; the flow still gets the originals.

    Faithful where JSON allows and a repr where it does not: NaN and infinities as
    the strings "NaN", "Infinity" and "-Infinity" (JSON has no such numbers), bytes
    as text when they are UTF-8 and as their repr otherwise, anything else
    JSON cannot hold as its repr. An iterator (a generator, a file) is recorded by
    its repr and never iterated: reading it would consume what the flow is given.
    """
    return {
        name: to_jsonable_python(_recordable(value), fallback=repr)
        for name, value in parameters.items()
    }


def _recordable(value: Any, depth: int = 0) -> Any:
    """`value` with its iterators and bytes replaced, containers walked (not copied
    unless something inside them changes)."""
    if isinstance(value, bytes | bytearray):
        try:
            return bytes(value).decode("utf-8")
        except UnicodeDecodeError:
            return repr(value)
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    if isinstance(value, Iterator):
        return repr(value)
    if depth > 100:  # a structure nested this deep is recorded as its repr
        return repr(value)
    if isinstance(value, dict):
        items = {k: _recordable(v, depth + 1) for k, v in value.items()}
        changed = any(items[k] is not v for k, v in value.items())
        return items if changed else value
    if isinstance(value, list | tuple | set | frozenset):
        members = [_recordable(v, depth + 1) for v in value]
        changed = any(new is not old for new, old in zip(members, value, strict=True))
        return members if changed else value
    return value
