"""Point-spread functions as normalised 2-D kernels.

Sizes are in pixels of the sharp (restored) grid. Every kernel is odd-sized, centred on its
middle pixel and sums to 1. Unless ``size`` is given, a kernel is large enough to hold at least
``energy`` (default 99.5 %) of the PSF's flux, computed from the profile's enclosed-energy curve.

Sampling modes follow :mod:`astropy.convolution`: ``"center"`` evaluates the profile at pixel
centres, ``"oversample"`` averages it over a ``factor x factor`` sub-grid of each pixel.

Example:
    >>> k = gaussian_psf(2.0)
    >>> k.shape, round(float(k.sum()), 6)
    (torch.Size([7, 7]), 1.0)
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path

import kornia
import numpy as np
import torch

from ..errors import RestoreError

FWHM_TO_SIGMA = 1.0 / (2.0 * math.sqrt(2.0 * math.log(2.0)))
AIRY_FIRST_ZERO = 3.8317059702075125  # first zero of J1
MAX_AUTO_SIZE = 1025

Number = float | torch.Tensor


def _as_tensor(value: Number, dtype: torch.dtype) -> torch.Tensor:
    return value.to(dtype) if isinstance(value, torch.Tensor) else torch.tensor(float(value), dtype=dtype)


def _scalar(value: Number) -> float:
    return float(value.detach()) if isinstance(value, torch.Tensor) else float(value)


def _check_positive(name: str, value: Number) -> None:
    if _scalar(value) <= 0:
        raise ValueError(f"{name} must be > 0, got {_scalar(value)}")


def _odd_size(half_width: float) -> int:
    return min(2 * int(math.ceil(half_width)) + 1, MAX_AUTO_SIZE)


def sample_profile(
    profile: Callable[[torch.Tensor], torch.Tensor],
    size: int,
    mode: str = "oversample",
    factor: int = 10,
    dtype: torch.dtype = torch.float64,
) -> torch.Tensor:
    """Sample a radial profile ``profile(r2)`` on a ``size x size`` grid and normalise it to sum 1.

    Example:
        >>> sample_profile(lambda r2: torch.exp(-r2 / 2), 3, mode="center").sum().item()
        1.0
    """
    if size < 1 or size % 2 == 0:
        raise ValueError(f"PSF size must be a positive odd integer, got {size}")
    if mode not in ("center", "oversample"):
        raise ValueError(f"sampling mode must be 'center' or 'oversample', got {mode!r}")
    centres = torch.arange(size, dtype=dtype) - (size - 1) / 2
    if mode == "oversample":
        sub = (torch.arange(factor, dtype=dtype) + 0.5) / factor - 0.5
        centres = (centres[:, None] + sub[None, :]).reshape(-1)
    r2 = centres[:, None] ** 2 + centres[None, :] ** 2
    values = profile(r2)
    if mode == "oversample":
        values = values.reshape(size, factor, size, factor).mean(dim=(1, 3))
    return values / values.sum()


def _size_for_energy(radius_for_energy: float, size: int | None) -> int:
    if size is not None:
        if size < 1 or size % 2 == 0:
            raise ValueError(f"PSF size must be a positive odd integer, got {size}")
        return size
    return _odd_size(radius_for_energy)


def gaussian_psf(
    fwhm: Number, size: int | None = None, energy: float = 0.995, mode: str = "oversample", factor: int = 10
) -> torch.Tensor:
    """Circular Gaussian PSF of full width at half maximum ``fwhm`` (differentiable in ``fwhm``).

    Example:
        >>> gaussian_psf(3.0, size=7).shape
        torch.Size([7, 7])
    """
    _check_positive("fwhm", fwhm)
    sigma = _as_tensor(fwhm, torch.float64) * FWHM_TO_SIGMA
    # enclosed energy of a circular Gaussian: 1 - exp(-r^2 / 2 sigma^2)
    radius = _scalar(sigma) * math.sqrt(-2.0 * math.log(1.0 - energy))
    return sample_profile(lambda r2: torch.exp(-r2 / (2 * sigma**2)), _size_for_energy(radius, size), mode, factor)


def moffat_gamma(fwhm: Number, beta: Number) -> Number:
    """Core width ``gamma`` of a Moffat profile with the given FWHM and ``beta``."""
    return fwhm / (2.0 * (2.0 ** (1.0 / beta) - 1.0) ** 0.5)


def moffat_psf(
    fwhm: Number,
    beta: Number,
    size: int | None = None,
    energy: float = 0.995,
    mode: str = "oversample",
    factor: int = 10,
) -> torch.Tensor:
    """Moffat PSF ``(1 + r^2 / gamma^2)^-beta`` (differentiable in ``fwhm`` and ``beta``).

    Example:
        >>> moffat_psf(3.0, 3.5, size=9).shape
        torch.Size([9, 9])
    """
    _check_positive("fwhm", fwhm)
    if _scalar(beta) <= 1:
        raise ValueError(f"beta must be > 1 for a Moffat PSF of finite flux, got {_scalar(beta)}")
    beta_t = _as_tensor(beta, torch.float64)
    gamma = moffat_gamma(_as_tensor(fwhm, torch.float64), beta_t)
    # enclosed energy: 1 - (1 + r^2 / gamma^2)^(1 - beta)
    radius = _scalar(gamma) * math.sqrt((1.0 - energy) ** (1.0 / (1.0 - _scalar(beta))) - 1.0)
    return sample_profile(
        lambda r2: (1 + r2 / gamma**2) ** (-beta_t), _size_for_energy(radius, size), mode, factor
    )


def _airy_profile(radius: float, obstruction: float) -> Callable[[torch.Tensor], torch.Tensor]:
    def profile(r2: torch.Tensor) -> torch.Tensor:
        x = AIRY_FIRST_ZERO * torch.sqrt(r2) / radius
        safe = torch.where(x == 0, torch.ones_like(x), x)
        amp = 2 * torch.special.bessel_j1(safe) / safe
        if obstruction > 0:
            amp = amp - obstruction**2 * 2 * torch.special.bessel_j1(obstruction * safe) / (obstruction * safe)
        amp = torch.where(x == 0, torch.full_like(x, 1.0 - obstruction**2), amp)
        return amp**2

    return profile


def _airy_energy_radius(radius: float, obstruction: float, energy: float) -> float:
    """Radius enclosing ``energy`` of an (obstructed) Airy pattern, by numerical integration."""
    if obstruction == 0:
        # closed form: 1 - J0(x)^2 - J1(x)^2, a slowly growing curve; search on a fine grid
        x = torch.linspace(0, 2000, 400001, dtype=torch.float64)
        ee = 1 - torch.special.bessel_j0(x) ** 2 - torch.special.bessel_j1(x) ** 2
    else:
        x = torch.linspace(1e-6, 2000, 400001, dtype=torch.float64)
        prof = _airy_profile(AIRY_FIRST_ZERO, obstruction)(x**2)
        ring = prof * x
        ee = torch.cumsum(ring, 0)
        ee = ee / (ee[-1] * (1 + 2 / (math.pi * 2000)))  # tail beyond x=2000 ~ 2/(pi x)
    idx = int(torch.searchsorted(ee, torch.tensor(energy, dtype=torch.float64)))
    return float(x[min(idx, len(x) - 1)]) * radius / AIRY_FIRST_ZERO


def airy_radius(wavelength: float, aperture: float, pixel_scale_arcsec: float) -> float:
    """First dark ring radius in pixels, from wavelength and aperture (same length unit) and pixel scale.

    Example:
        >>> round(airy_radius(500e-9, 2.4, 0.04), 3)  # Hubble-like, 500 nm, 40 mas pixels
        1.31
    """
    theta = 1.2196698912665045 * wavelength / aperture  # radians
    return math.degrees(theta) * 3600.0 / pixel_scale_arcsec


def airy_psf(
    radius: float,
    obstruction: float = 0.0,
    size: int | None = None,
    energy: float = 0.995,
    mode: str = "oversample",
    factor: int = 10,
) -> torch.Tensor:
    """Airy pattern with first dark ring at ``radius`` pixels and optional central obstruction.

    Fixed (not differentiable in ``radius``): torch has no derivative of the Bessel function.

    Example:
        >>> airy_psf(2.0, size=11).shape
        torch.Size([11, 11])
    """
    _check_positive("radius", radius)
    if not 0 <= obstruction < 1:
        raise ValueError(f"obstruction must be in [0, 1), got {obstruction}")
    radius = float(radius)
    half = _airy_energy_radius(radius, obstruction, energy) if size is None else 0.0
    return sample_profile(_airy_profile(radius, obstruction), _size_for_energy(half, size), mode, factor)


def motion_psf(length: float, angle: float = 0.0) -> torch.Tensor:
    """Linear motion blur of ``length`` pixels at ``angle`` degrees (counter-clockwise from +x), via Kornia.

    Example:
        >>> motion_psf(5, 0.0).shape
        torch.Size([5, 5])
    """
    _check_positive("length", length)
    size = max(3, 2 * (math.ceil(length) // 2) + 1)
    kernel = kornia.filters.get_motion_kernel2d(size, float(angle), 0.0, mode="bilinear")[0]
    kernel = kernel.to(torch.float64)
    return kernel / kernel.sum()


def normalise_psf(psf: np.ndarray | torch.Tensor) -> torch.Tensor:
    """Normalise a measured PSF: odd-sized, centroid on the middle pixel (Fourier shift), sum 1.

    Example:
        >>> k = normalise_psf(np.pad(np.ones((2, 2)), ((1, 2), (1, 2))))
        >>> k.shape, round(float(k.sum()), 6)
        (torch.Size([5, 5]), 1.0)
    """
    k = torch.as_tensor(np.asarray(psf, dtype=np.float64))
    if k.ndim != 2 or min(k.shape) < 1:
        raise ValueError(f"a PSF must be a 2-D array, got shape {tuple(k.shape)}")
    if not torch.isfinite(k).all() or k.sum() <= 0:
        raise ValueError("a PSF must be finite with a positive sum")
    k = torch.nn.functional.pad(k, (0, 1 - k.shape[1] % 2, 0, 1 - k.shape[0] % 2))
    k = k / k.sum()
    h, w = k.shape
    cy = float((k.sum(1) * torch.arange(h, dtype=k.dtype)).sum())
    cx = float((k.sum(0) * torch.arange(w, dtype=k.dtype)).sum())
    dy, dx = (h - 1) / 2 - cy, (w - 1) / 2 - cx
    fy = torch.fft.fftfreq(h, dtype=k.dtype)[:, None]
    fx = torch.fft.fftfreq(w, dtype=k.dtype)[None, :]
    phase = torch.exp(-2j * math.pi * (fy * dy + fx * dx))
    k = torch.fft.ifft2(torch.fft.fft2(k) * phase).real
    return k / k.sum()


def load_psf(path: str | Path, hdu: int | None = None) -> torch.Tensor:
    """Read a PSF from an image (PNG/TIFF) or FITS file and normalise it with :func:`normalise_psf`."""
    from ..imageio import read_array

    path = Path(path)
    data, _ = read_array(path, hdu=hdu)
    if data.ndim == 3:
        data = data.mean(axis=0)
    try:
        return normalise_psf(data)
    except ValueError as err:
        raise RestoreError(str(err), source=path) from None
