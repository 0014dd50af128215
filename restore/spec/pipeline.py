"""A whole recipe: how the observation was made, which prior explains it, how to search, where to write.

Example:
    >>> spec = PipelineSpec.model_validate({
    ...     "domain": {"kind": "faces"},
    ...     "forward": [{"kind": "downsample", "factor": 4}],
    ...     "noise": {"kind": "gaussian", "sigma": 2.0},
    ...     "prior": {"kind": "builtin", "name": "faces"},
    ... })
    >>> spec.forward[0].method, spec.output.dir.name
    ('bicubic', 'restored')
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

import yaml
from pydantic import Field

from .base import ExistingFile, Spec
from .consistency import ConsistencySpec
from .domain import DomainSpec, ImageDomainSpec
from .forward import OperatorSpec
from .layout import LayoutSpec, TilesLayoutSpec
from .noise import NoiseSpec
from .prior import PriorSpec
from .search import SearchSpec


class OutputSpec(Spec):
    """Where outputs go: ``dir`` resolves from the working directory, like ``-o``."""

    dir: Path = Path("restored")
    overwrite: bool = False
    figures: bool = True


class PipelineSpec(Spec):
    """A whole recipe: how the observation was made, which prior explains it, how to search."""

    version: Literal[1] = 1
    input: ExistingFile | None = Field(None, description="default input file, relative to the recipe")
    domain: DomainSpec = Field(default_factory=ImageDomainSpec)
    forward: list[OperatorSpec] = Field(min_length=1)
    noise: NoiseSpec
    prior: PriorSpec
    search: SearchSpec = Field(default_factory=SearchSpec)
    layout: LayoutSpec = Field(default_factory=TilesLayoutSpec)
    consistency: ConsistencySpec = Field(default_factory=ConsistencySpec)
    output: OutputSpec = Field(default_factory=OutputSpec)
    seed: Annotated[int, Field(ge=0)] = 0
    threads: Annotated[int, Field(ge=1)] | None = Field(
        None, description="torch intra-op threads for restore run (--threads wins; default: the cores this "
        "process may use). One per job when jobs share cores: more threads than free cores collapse")

    def to_yaml(self) -> str:
        """The recipe as YAML (paths absolute); ``load_recipe`` reads it back to an equal spec."""
        return yaml.safe_dump(self.model_dump(mode="json"), sort_keys=False)
