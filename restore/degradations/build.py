"""Build forward models and likelihoods from recipe specs (and resolve the noise values they need).

Example:
    >>> from restore.spec import DownsampleOpSpec, PsfOpSpec, GaussianPsfSpec
    >>> A = build_forward([PsfOpSpec(psf=GaussianPsfSpec(fwhm=2.0)), DownsampleOpSpec(factor=4)])
    >>> A.scale()
    4
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import torch

from ..errors import RestoreError
from ..imageio import NOISE_KEYWORDS
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
from .noise import GaussianNoise, Likelihood, PoissonGaussianNoise, PoissonNoise, estimate_sigma
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


NOISE_PARAMETERS: dict[type, tuple[str, ...]] = {
    GaussianNoiseSpec: ("sigma",),
    PoissonNoiseSpec: ("offset", "gain", "sky"),
    PoissonGaussianNoiseSpec: ("offset", "gain", "sky", "read_noise"),
}
"""Each noise model's parameters, in the order they are resolved (an estimate may use those before it)."""

_RANGES = {"sigma": (0.0, False), "gain": (0.0, False), "read_noise": (0.0, True), "sky": (0.0, True)}


def _checked(name: str, value: float, where: str) -> float:
    value = float(value)
    low, inclusive = _RANGES.get(name, (-math.inf, True))
    if not math.isfinite(value) or value < low or (value == low and not inclusive):
        bound = f">= {low:g}" if inclusive else f"> {low:g}"
        raise RestoreError(f"noise.{name} {where} is {value:g} (must be finite and {bound})")
    return value


def _estimate(name: str, values: dict[str, float], data: torch.Tensor, mask: torch.Tensor | None) -> float:
    valid = torch.isfinite(data) if mask is None else torch.isfinite(data) & mask.to(torch.bool)
    if not bool(valid.any()):
        raise RestoreError(f"noise.{name} is 'estimate' but the input has no valid pixel")
    level = float(data[valid].double().median()) - values.get("offset", 0.0)
    if name == "sky":
        return max(level, 0.0)
    try:
        sigma = estimate_sigma(data, mask)
    except ValueError as err:
        raise RestoreError(f"noise.{name} is 'estimate' but it cannot be measured: {err}") from None
    if name == "sigma":
        return sigma
    gain = values["gain"]  # read noise in electrons: total variance less the shot noise at the typical level
    return math.sqrt(max(gain**2 * sigma**2 - gain * max(level, 0.0), 0.0))


def resolve_noise(spec: NoiseSpec, header: Mapping[str, float] | None = None, data: torch.Tensor | None = None,
                  mask: torch.Tensor | None = None) -> dict[str, float]:
    """Numbers for every parameter of a noise spec: as given, ``from_header`` (from ``header``, the values
    a domain adapter read from the input) or ``estimate`` (measured from ``data``, the observation).
    One meaning for ``run``, ``simulate`` and ``validate``; a one-line :class:`RestoreError` otherwise.

    Example:
        >>> from restore.spec import PoissonGaussianNoiseSpec
        >>> resolve_noise(PoissonGaussianNoiseSpec(gain="from_header", read_noise=3.0), {"gain": 2.0})
        {'offset': 0.0, 'gain': 2.0, 'sky': 0.0, 'read_noise': 3.0}
    """
    header = header or {}
    values: dict[str, float] = {}
    for name in NOISE_PARAMETERS[type(spec)]:
        value = getattr(spec, name)
        if value == "from_header":
            if name not in header:
                keys = ", ".join(NOISE_KEYWORDS.get(name, ()))
                raise RestoreError(f"noise.{name} is 'from_header' but the input states no {name} (FITS: {keys}; "
                                   f"other formats: restore-noise-{name}= in their text)")
            values[name] = _checked(name, header[name], "from the header")
        elif value == "estimate":
            if data is None:
                raise RestoreError(f"noise.{name} is 'estimate', which needs an observation to measure it from")
            values[name] = _checked(name, _estimate(name, values, data, mask), "as estimated")
        else:
            values[name] = _checked(name, value, "")
    return values


def build_likelihood(spec: NoiseSpec, values: Mapping[str, float] | None = None) -> Likelihood:
    """The likelihood a noise spec describes, with ``values`` from :func:`resolve_noise` (default: resolved
    without a header or data, so ``from_header``/``estimate`` are errors)."""
    v = dict(values) if values is not None else resolve_noise(spec)
    if isinstance(spec, GaussianNoiseSpec):
        return GaussianNoise(v["sigma"])
    if isinstance(spec, PoissonNoiseSpec):
        return PoissonNoise(v["gain"], v["sky"], v["offset"])
    if isinstance(spec, PoissonGaussianNoiseSpec):
        return PoissonGaussianNoise(v["gain"], v["read_noise"], v["sky"], v["offset"])
    raise TypeError(f"unknown noise spec {type(spec).__name__}")
