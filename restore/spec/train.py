"""A training run of a prior: data, architecture, optimisation, and what the model card will say.

Example:
    >>> TrainSpec.model_validate({"name": "x", "data": "imgs/", "out": "x.safetensors"}).batch
    16
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, ValidationInfo, field_validator

from .base import RelativePath, Spec, resolve_path
from .domain import DomainSpec, FacesDomainSpec


class GeneratorSpec(Spec):
    style_dim: int = Field(128, ge=1)
    n_mlp: int = Field(4, ge=1)
    channels: dict[int, int] = {4: 128, 8: 128, 16: 64, 32: 32, 64: 16}


class AugmentSpec(Spec):
    flip_x: bool = True
    flip_y: bool = False
    rot90: bool = False
    translate: Annotated[float, Field(ge=0, lt=0.5)] = 0.125
    cutout: Annotated[float, Field(ge=0, lt=1)] = Field(
        0.0, description="DiffAugment cutout: side of a square set to 0 (mid-range), as a fraction of the image side"
    )
    gamma: Annotated[float, Field(ge=1)] = Field(
        1.0, description="training images only: intensity curve x**g, g log-uniform in [1/gamma, gamma] "
        "(covers the dynamic range of cameras other than the training ones); 1 = off"
    )


class TrainSpec(Spec):
    """A training run: data, architecture, optimisation, and what the model card will say."""

    name: str
    data: str = Field(description="folder or glob of training images (relative to the config file)")
    domain: DomainSpec = Field(default_factory=FacesDomainSpec)
    resolution: int = Field(64, ge=4)
    img_channels: int = Field(3, ge=1)
    holdout: Annotated[float, Field(ge=0, lt=1)] = 0.1
    holdout_group: str | None = Field(
        None, description="manifest.csv column (next to the images) to split by, e.g. fov: whole groups are held out"
    )
    limit: int | None = Field(None, ge=1, description="use only the first N training images")
    generator: GeneratorSpec = Field(default_factory=GeneratorSpec)
    batch: int = Field(16, ge=2)
    iterations: int = Field(3000, ge=1)
    max_minutes: float | None = Field(
        None, gt=0, description="stop and export after this much training time in this run; running again resumes"
    )
    lr: float = Field(0.0025, gt=0)
    r1: float = Field(0.1, ge=0)
    r1_every: int = Field(16, ge=1)
    ema_half_life: float = Field(2000.0, gt=0, description="images")
    augment: AugmentSpec = Field(default_factory=AugmentSpec)
    precision: Literal["fp32", "bf16"] = "bf16"
    device: str = "cpu"
    threads: int | None = Field(None, ge=1)
    seed: int = 0
    out: RelativePath
    checkpoint: RelativePath | None = None
    checkpoint_every: int = Field(250, ge=1)
    grid: RelativePath | None = Field(None, description="PNG sample grid to write (e.g. docs/<name>_samples.png)")
    evaluate: bool = Field(True, description="measure sample quality (SWD) and memorisation on the hold-out")
    storage_dtype: Literal["float32", "float16"] = "float32"
    progress: bool = True
    card: dict[str, Any] = Field(default_factory=dict, description="domain, normalisation, training_data, licence")

    @field_validator("data")
    @classmethod
    def _relative(cls, value: str, info: ValidationInfo) -> str:
        return str(resolve_path(Path(value), info))
