"""Build forward models and likelihoods from recipe specs.

Example:
    >>> from restore.spec import DownsampleOpSpec, PsfOpSpec, GaussianPsfSpec
    >>> A = build_forward([PsfOpSpec(psf=GaussianPsfSpec(fwhm=2.0)), DownsampleOpSpec(factor=4)])
    >>> A.scale()
    4
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch

from ..errors import RestoreError
from ..spec import (
    AiryPsfSpec,
    DownsampleOpSpec,
    FilePsfSpec,
    GaussianNoiseSpec,
    GaussianPsfSpec,
    MoffatPsfSpec,
    MotionPsfSpec,
    NoiseSpec,
    OperatorSpec,
    PoissonGaussianNoiseSpec,
    PoissonNoiseSpec,
    PsfSpec,
)
from .base import Compose, LinearOperator
from .blur import Blur
from .noise import GaussianNoise, Likelihood, PoissonGaussianNoise, PoissonNoise
from .psf import airy_psf, airy_radius, gaussian_psf, load_psf, moffat_psf, motion_psf
from .resample import Downsample


def build_psf(spec: PsfSpec) -> torch.Tensor:
    """The normalised kernel a PSF spec describes, on the sharp grid."""
    if isinstance(spec, GaussianPsfSpec):
        return gaussian_psf(spec.to_pixels(spec.fwhm), spec.size)
    if isinstance(spec, MoffatPsfSpec):
        return moffat_psf(spec.to_pixels(spec.fwhm), spec.beta, spec.size)
    if isinstance(spec, AiryPsfSpec):
        if spec.radius is not None:
            radius = spec.to_pixels(spec.radius)
        else:
            radius = airy_radius(spec.wavelength, spec.aperture, spec.pixel_scale)  # type: ignore[arg-type]
        return airy_psf(radius, spec.obstruction, spec.size)
    if isinstance(spec, MotionPsfSpec):
        return motion_psf(spec.to_pixels(spec.length), spec.angle)
    if isinstance(spec, FilePsfSpec):
        return load_psf(spec.path, spec.hdu)
    raise TypeError(f"unknown PSF spec {type(spec).__name__}")


def build_operator(spec: OperatorSpec) -> LinearOperator:
    """One forward operator from its spec."""
    if isinstance(spec, DownsampleOpSpec):
        return Downsample(spec.factor, spec.method, spec.border)
    return Blur(build_psf(spec.psf), spec.border)


def build_forward(specs: Sequence[OperatorSpec]) -> Compose:
    """The composed forward model ``A``, applied in the listed order."""
    return Compose([build_operator(s) for s in specs])


def _resolve(value: float | str, name: str, header: Mapping[str, float]) -> float:
    if isinstance(value, str):
        if name not in header:
            raise RestoreError(f"noise.{name} is '{value}' but the input gives no {name}")
        return float(header[name])
    return float(value)


def build_likelihood(spec: NoiseSpec, header: Mapping[str, float] | None = None) -> Likelihood:
    """The likelihood a noise spec describes; ``from_header``/``estimate`` values come from ``header``."""
    header = header or {}
    if isinstance(spec, GaussianNoiseSpec):
        return GaussianNoise(_resolve(spec.sigma, "sigma", header))
    if isinstance(spec, PoissonNoiseSpec):
        return PoissonNoise(_resolve(spec.gain, "gain", header), _resolve(spec.sky, "sky", header))
    if isinstance(spec, PoissonGaussianNoiseSpec):
        return PoissonGaussianNoise(
            _resolve(spec.gain, "gain", header),
            _resolve(spec.read_noise, "read_noise", header),
            _resolve(spec.sky, "sky", header),
        )
    raise TypeError(f"unknown noise spec {type(spec).__name__}")
