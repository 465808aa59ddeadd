"""Project-file errors, and pydantic's validation errors told as "LINE: KEY: problem; allowed"."""

from __future__ import annotations

import types
from typing import Annotated, Any, Union, get_args, get_origin

from pydantic import BaseModel, ValidationError

from skyrun.deploy.yaml_lines import KeyPath, LoadedYAML, path_text

__all__ = ["ProjectFileError", "allowed_keys", "validation_problems"]

_MAX_SHOWN = 60


class ProjectFileError(ValueError):
    """A project file cannot be used; the message names the file, the line and the key."""


def _strip(annotation: Any) -> Any:
    """`X` from `X | None` and `Annotated[X, ...]`."""
    while True:
        origin = get_origin(annotation)
        if origin is Annotated:
            annotation = get_args(annotation)[0]
        elif origin in (Union, types.UnionType):
            options = [arg for arg in get_args(annotation) if arg is not type(None)]
            if len(options) != 1:
                return annotation
            annotation = options[0]
        else:
            return annotation


def _model_at(root: type[BaseModel], path: KeyPath) -> type[BaseModel] | None:
    """The model that the mapping at `path` is validated by, if it is one."""
    current: Any = root
    for part in path:
        current = _strip(current)
        if isinstance(part, int):
            if get_origin(current) is not list:
                return None
            current = get_args(current)[0]
        elif isinstance(current, type) and issubclass(current, BaseModel):
            field = next(
                (info for name, info in current.model_fields.items() if part in (name, info.alias)),
                None,
            )
            if field is None:
                return None
            current = field.annotation
        else:
            return None
    current = _strip(current)
    return current if isinstance(current, type) and issubclass(current, BaseModel) else None


def allowed_keys(model: type[BaseModel]) -> str:
    """`name (required), version, ...`: the keys a mapping validated by `model` takes."""
    keys = [
        f"{info.alias or name}{' (required)' if info.is_required() else ''}"
        for name, info in model.model_fields.items()
    ]
    return ", ".join(keys)


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= _MAX_SHOWN else text[: _MAX_SHOWN - 3] + "..."


def _message(error: Any, root: type[BaseModel]) -> str:
    kind = error["type"]
    path: KeyPath = tuple(error["loc"])
    message = str(error["msg"]).removeprefix("Value error, ")
    if kind == "extra_forbidden":
        model = _model_at(root, path[:-1])
        allowed = f"allowed keys here: {allowed_keys(model)}" if model else "remove it"
        return f"unknown key; {allowed}"
    if kind == "missing":
        model = _model_at(root, path[:-1])
        keys = f"; this mapping takes {allowed_keys(model)}" if model else ""
        return f"Field required{keys}"
    if kind in ("model_type", "dict_type"):
        model = _model_at(root, path)
        keys = f" with keys {allowed_keys(model)}" if model else ""
        return f"must be a mapping{keys}, got {_shown(error['input'])}"
    if kind == "value_error":
        return message
    return f"{message}, got {_shown(error['input'])}"


def validation_problems(
    exc: ValidationError, loaded: LoadedYAML, root: type[BaseModel]
) -> list[tuple[int, str]]:
    """Each error of `exc` as (line, "KEY: what is wrong; what is allowed"), by line."""
    problems = []
    for error in exc.errors():
        path: KeyPath = tuple(error["loc"])
        problems.append((loaded.line_of(path), f"{path_text(path)}: {_message(error, root)}"))
    return sorted(problems, key=lambda problem: problem[0])
