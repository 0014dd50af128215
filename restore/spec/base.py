"""The base of every spec and the annotated types the specs share (each check stated once).

Example:
    >>> from pydantic import TypeAdapter
    >>> TypeAdapter(OddSize).validate_python(5)
    5
    >>> TypeAdapter(OrderedPair).validate_python((0.8, 1.2))
    (0.8, 1.2)
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationInfo

PositiveFloat = Annotated[float, Field(gt=0, allow_inf_nan=False)]
NonNegativeFloat = Annotated[float, Field(ge=0, allow_inf_nan=False)]


class Spec(BaseModel):
    """Base of every spec: unknown keys are errors, values are checked on assignment too."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)


def resolve_path(value: Path, info: ValidationInfo) -> Path:
    """``value`` relative to the ``base_dir`` of the validation context (the recipe's folder)."""
    base = (info.context or {}).get("base_dir")
    path = Path(value).expanduser()
    if base is not None and not path.is_absolute():
        path = Path(base) / path
    return path


def _existing_file(value: Path, info: ValidationInfo) -> Path:
    path = resolve_path(value, info)
    if not path.is_file():
        raise ValueError(f"file not found: {path}")
    return path


def _odd(value: int) -> int:
    if value % 2 == 0:
        raise ValueError("must be odd")
    return value


def _ordered(value: tuple[float, float]) -> tuple[float, float]:
    if value[0] >= value[1]:
        raise ValueError("must be (low, high) with low < high")
    return value


ExistingFile = Annotated[Path, AfterValidator(_existing_file)]
"""A file that must exist, relative to the recipe's folder."""
RelativePath = Annotated[Path, AfterValidator(resolve_path)]
"""A path relative to the recipe's folder (need not exist)."""
OddSize = Annotated[int, Field(ge=1), AfterValidator(_odd)]
OrderedPair = Annotated[tuple[float, float], AfterValidator(_ordered)]
"""``(low, high)`` with ``low < high``."""
