"""Priors: a builtin name, a ``.safetensors`` file with its card, or a user generator factory.

Example:
    >>> BuiltinPriorSpec(name="faces").kind
    'builtin'
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from .base import ExistingFile, Spec

LatentDistribution = Literal["normal", "uniform"]


class BuiltinPriorSpec(Spec):
    kind: Literal["builtin"] = "builtin"
    name: Annotated[str, Field(pattern=r"^[\w-]+$", description="a builtin prior's name (never a path)")]


class FilePriorSpec(Spec):
    kind: Literal["file"] = "file"
    path: ExistingFile


class ModulePriorSpec(Spec):
    """A user generator: ``factory`` is a ``restore.priors`` entry point's name, or ``package.module:function``
    returning an ``nn.Module`` (runs code: only with ``--trust-code`` unless it is an installed entry point)."""

    kind: Literal["module"] = "module"
    factory: Annotated[str, Field(pattern=r"^([\w.]+:\w+|[\w-]+)$")]
    weights: ExistingFile | None = None
    latent_dim: Annotated[int, Field(ge=1)]
    resolution: Annotated[int, Field(ge=1)]
    channels: Annotated[int, Field(ge=1)] = 3
    latent_distribution: LatentDistribution = "normal"
    framing: dict[Literal["x", "y", "size"], float] | None = Field(
        None, description="for priors of centred objects (layout: objects): where the training images had "
        "their object, in prior pixels (x, y of its centre, size in the detector's convention)")


PriorSpec = Annotated[BuiltinPriorSpec | FilePriorSpec | ModulePriorSpec, Field(discriminator="kind")]
