"""Noise models of a recipe, in the observation's data units.

A value may be a number, ``from_header`` (read from the input's header: FITS GAIN, RDNOISE, SKY,
SIGMA, PEDESTAL and their synonyms) or, where it can be measured, ``estimate`` (measured from the
observation itself, robustly). :func:`restore.degradations.resolve_noise` turns them into numbers, the
same way for ``run``, ``simulate`` and ``validate``.

Example:
    >>> PoissonGaussianNoiseSpec(gain=2.0, read_noise="estimate").offset
    0.0
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from .base import NonNegativeFloat, PositiveFloat, Spec

FromHeader = Literal["from_header"]
Estimate = Literal["estimate"]
FiniteFloat = Annotated[float, Field(allow_inf_nan=False)]

_OFFSET = "noise-free offset (bias, pedestal) in data units: observed, but neither signal nor noise"


class GaussianNoiseSpec(Spec):
    kind: Literal["gaussian"] = "gaussian"
    sigma: PositiveFloat | FromHeader | Estimate = Field(description="standard deviation in data units")


class PoissonNoiseSpec(Spec):
    kind: Literal["poisson"] = "poisson"
    gain: PositiveFloat | FromHeader = Field(1.0, description="electrons per data unit")
    sky: NonNegativeFloat | FromHeader | Estimate = Field(0.0, description="photon background in data units")
    offset: FiniteFloat | FromHeader = Field(0.0, description=_OFFSET)


class PoissonGaussianNoiseSpec(Spec):
    kind: Literal["poisson_gaussian"] = "poisson_gaussian"
    gain: PositiveFloat | FromHeader = Field(1.0, description="electrons per data unit")
    read_noise: NonNegativeFloat | FromHeader | Estimate = Field(0.0, description="electrons")
    sky: NonNegativeFloat | FromHeader | Estimate = Field(0.0, description="photon background in data units")
    offset: FiniteFloat | FromHeader = Field(0.0, description=_OFFSET)


NoiseSpec = Annotated[GaussianNoiseSpec | PoissonNoiseSpec | PoissonGaussianNoiseSpec, Field(discriminator="kind")]
