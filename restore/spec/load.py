"""Reading specs from YAML: one loader for recipes and training configs, with ``--set`` overrides and
one-line errors that name the file, the key path and the problem.

Example:
    >>> import restore, pathlib
    >>> spec = load_recipe(pathlib.Path(restore.__file__).parents[1] / "recipes" / "faces.yaml")
    >>> spec.domain.kind
    'faces'
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from ..errors import RestoreError
from .pipeline import PipelineSpec
from .train import TrainSpec

M = TypeVar("M", bound=BaseModel)

_ABSENT = object()


def _key_path(loc: tuple[Any, ...], data: Any) -> str:
    """Dotted key path of an error location, without the union tags pydantic inserts."""
    keys: list[str] = []
    node, tag_done = data, False
    for part in loc:
        if isinstance(node, dict) and not tag_done and part in (node.get("kind"), "plugin"):
            tag_done = True  # discriminator tag pydantic inserts before a union member's fields
            continue
        tag_done = False
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, list) and isinstance(part, int) and part < len(node):
            node = node[part]
        elif isinstance(node, dict) or node is _ABSENT:
            node = _ABSENT  # a key the input lacks (missing) or has in error
        else:
            continue  # label of a plain union member (float | 'from_header') under a scalar value
        keys.append(str(part))
    return ".".join(keys) or "<recipe>"


def _format_error(err: ValidationError, source: str | Path, data: Any) -> RestoreError:
    parts = []
    for e in err.errors():
        msg = e["msg"].removeprefix("Value error, ")
        if e["type"] == "extra_forbidden":
            msg = "unknown key"
        elif e["type"] == "missing":
            msg = "required key missing"
        elif msg.startswith("Input should be "):
            msg = "must be " + msg.removeprefix("Input should be ")
        parts.append((_key_path(e["loc"], data), msg))
    unique = [f"{key}: {msg}" for key, msg in dict(reversed(parts)).items()][::-1]
    more = f" (and {len(unique) - 1} more)" if len(unique) > 1 else ""
    return RestoreError(unique[0] + more, source=source)


def apply_overrides(data: dict[str, Any], overrides: list[str], source: str | Path) -> dict[str, Any]:
    """Set ``key.path=value`` items in a raw recipe dict (list items by index)."""
    for item in overrides:
        keys, value = parse_override(item)
        node: Any = data
        for depth, key in enumerate(keys):
            last = depth == len(keys) - 1
            where = ".".join(keys[: depth + 1])
            if isinstance(node, list):
                if not key.isdigit() or int(key) >= len(node):
                    raise RestoreError(f"no list item {key} (list has {len(node)})", source=source, where=where)
                if last:
                    node[int(key)] = value
                else:
                    node = node[int(key)]
            elif isinstance(node, dict):
                if last:
                    node[key] = value
                else:
                    node = node.setdefault(key, {})
            else:
                raise RestoreError("cannot set a key inside a scalar value", source=source, where=where)
    return data


def parse_override(item: str) -> tuple[list[str], Any]:
    """Split ``a.b.0.c=value`` into its key path and the value parsed as a YAML scalar."""
    key, sep, raw = item.partition("=")
    if not sep or not key.strip():
        raise RestoreError(f"override {item!r} must look like key.path=value")
    try:
        value = yaml.safe_load(raw) if raw.strip() else None
    except yaml.YAMLError:
        raise RestoreError(f"override {item!r}: the value is not valid YAML") from None
    return key.strip().split("."), value


def validate(model: type[M], data: Any, source: str | Path = "<recipe>", base_dir: str | Path | None = None) -> M:
    """Validate a raw dict as ``model``; paths resolve from ``base_dir``; errors become one-line ``RestoreError``."""
    if not isinstance(data, dict):
        raise RestoreError("must be a YAML mapping", source=source)
    try:
        return model.model_validate(data, context={"base_dir": base_dir})
    except ValidationError as err:
        raise _format_error(err, source, data) from None


def validate_recipe(data: Any, source: str | Path = "<recipe>", base_dir: str | Path | None = None) -> PipelineSpec:
    """Validate a raw recipe dict (see :func:`validate`)."""
    return validate(PipelineSpec, data, source, base_dir)


class UniqueKeyLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` (no code runs) that refuses a mapping with the same key twice, which plain YAML
    loading would resolve silently in favour of the last one."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise yaml.constructor.ConstructorError(None, None, f"duplicate key {key!r}", key_node.start_mark)
            seen.add(key)
        return super().construct_mapping(node, deep)


def read_yaml(path: str | Path, what: str = "recipe") -> Any:
    """The YAML document of ``path`` (safe loading: no code runs; duplicate keys refused), or a one-line error."""
    path = Path(path)
    if path.is_dir():
        raise RestoreError(f"is a folder, not a file (a {what} is a YAML file)", source=path)
    if not path.is_file():
        raise RestoreError(f"{what} not found", source=path)
    try:
        data = yaml.load(path.read_text(encoding="utf-8"), Loader=UniqueKeyLoader)  # noqa: S506 - a SafeLoader
    except UnicodeDecodeError:
        raise RestoreError(f"{what} is not a UTF-8 text file", source=path) from None
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f"line {mark.line + 1}" if mark is not None else None
        raise RestoreError(f"invalid YAML ({getattr(err, 'problem', err)})", source=path, where=where) from None
    if data is None:
        raise RestoreError(f"{what} is empty", source=path)
    return data


def load(model: type[M], path: str | Path, overrides: list[str] | None = None, what: str = "recipe") -> M:
    """Read, override and validate a YAML file as ``model``; relative paths resolve from its folder."""
    path = Path(path)
    data = read_yaml(path, what)
    data = apply_overrides(data, overrides or [], path) if isinstance(data, dict) else data
    return validate(model, data, source=path, base_dir=path.parent)


def load_recipe(path: str | Path, overrides: list[str] | None = None) -> PipelineSpec:
    """Read, override and validate a YAML recipe.

    Example:
        >>> import restore, pathlib
        >>> spec = restore.load_recipe(pathlib.Path(restore.__file__).parents[1] / "recipes" / "faces.yaml")
        >>> spec.domain.kind
        'faces'
    """
    return load(PipelineSpec, path, overrides)


def load_train_spec(path: str | Path, overrides: list[str] | None = None) -> TrainSpec:
    """Read a training config, with the same overrides and one-line errors as recipes."""
    return load(TrainSpec, path, overrides, what="training config")
