"""Convolution of an image with a PSF (direct for small kernels, FFT for large ones), via Kornia.

This is a true convolution (the kernel is flipped), so asymmetric PSFs (motion, measured) act as
physics says. Borders are padded (``"reflect"`` by default, ``"constant"`` for zeros) so the output
has the input's size.

Example:
    >>> from typing import get_args

import torch
    >>> from restore.degradations.psf import gaussian_psf
    >>> y = blur(torch.rand(2, 3, 16, 16), gaussian_psf(2.0))
    >>> y.shape
    torch.Size([2, 3, 16, 16])
"""

from __future__ import annotations

import warnings
from typing import get_args

import kornia
import torch
from torch.nn import functional as F

from ..spec.forward import Border
from ._checks import check_bchw, check_choice
from .base import LinearOperator, pad_adjoint
from .psf import airy_psf, gaussian_psf, moffat_psf

FFT_THRESHOLD = 15  # kernels wider than this use FFT convolution
BORDERS = get_args(Border)


def fit_kernel(kernel: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """Crop a kernel (renormalised, with a warning) to at most ``2H-1 x 2W-1``, what an image can use."""
    kh, kw = kernel.shape[-2:]
    max_h, max_w = 2 * height - 1, 2 * width - 1
    if kh <= max_h and kw <= max_w:
        return kernel
    nh, nw = min(kh, max_h), min(kw, max_w)
    top, left = (kh - nh) // 2, (kw - nw) // 2
    cropped = kernel[..., top : top + nh, left : left + nw]
    lost = 1.0 - float(cropped.sum() / kernel.sum())
    warnings.warn(
        f"PSF kernel {kh}x{kw} cropped to {nh}x{nw} to fit a {height}x{width} image ({lost:.2%} of its energy lost)",
        stacklevel=3,
    )
    return cropped / cropped.sum()


def _pads(kernel: torch.Tensor) -> tuple[int, int, int, int]:
    kh, kw = kernel.shape[-2:]
    return (kw // 2, kw - 1 - kw // 2, kh // 2, kh - 1 - kh // 2)


def _filter(x: torch.Tensor, kernel: torch.Tensor, behaviour: str) -> torch.Tensor:
    k = kernel.to(dtype=x.dtype, device=x.device)[None]
    fn = kornia.filters.fft_conv if max(k.shape[-2:]) > FFT_THRESHOLD else kornia.filters.filter2d
    return fn(x, k, padding="valid", behaviour=behaviour)


def _check(x: torch.Tensor, kernel: torch.Tensor, border: str) -> None:
    check_bchw(x)
    if kernel.ndim != 2:
        raise ValueError(f"kernel must have shape (kH, kW), got {tuple(kernel.shape)}")
    check_choice(border, BORDERS, "border")


def blur(x: torch.Tensor, kernel: torch.Tensor, border: str = "reflect") -> torch.Tensor:
    """Convolve every channel of ``x`` ``(B, C, H, W)`` with ``kernel`` ``(kH, kW)``; same-size output."""
    _check(x, kernel, border)
    kernel = fit_kernel(kernel, *x.shape[-2:])
    return _filter(F.pad(x, _pads(kernel), mode=border), kernel, "conv")


def blur_adjoint(y: torch.Tensor, kernel: torch.Tensor, border: str = "reflect") -> torch.Tensor:
    """Adjoint of :func:`blur`: correlation with the kernel, then the borders folded back."""
    _check(y, kernel, border)
    kernel = fit_kernel(kernel, *y.shape[-2:])
    kh, kw = kernel.shape[-2:]
    full = _filter(F.pad(y, (kw - 1, kw - 1, kh - 1, kh - 1)), kernel, "corr")
    return pad_adjoint(full, _pads(kernel), border)


class Blur(LinearOperator):
    """Module twin of :func:`blur`; the kernel is a (fixed, detached) buffer.

    Example:
        >>> import torch
        >>> round(Blur.gaussian(2.0)(torch.ones(1, 1, 9, 9)).mean().item(), 6)
        1.0
    """

    def __init__(self, kernel: torch.Tensor, border: str = "reflect") -> None:
        super().__init__()
        check_choice(border, BORDERS, "border")
        self.register_buffer("kernel", kernel.detach().clone())
        self.border = border

    def extra_repr(self) -> str:
        k = self.kernel
        return f"kernel={tuple(k.shape)}, sum={float(k.sum()):.4g}, border={self.border!r}"

    @classmethod
    def gaussian(cls, fwhm: float, size: int | None = None, border: str = "reflect") -> Blur:
        return cls(gaussian_psf(fwhm, size), border)

    @classmethod
    def moffat(cls, fwhm: float, beta: float, size: int | None = None, border: str = "reflect") -> Blur:
        return cls(moffat_psf(fwhm, beta, size), border)

    @classmethod
    def airy(cls, radius: float, obstruction: float = 0.0, size: int | None = None, border: str = "reflect") -> Blur:
        return cls(airy_psf(radius, obstruction, size), border)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return blur(x, self.kernel, self.border)

    def adjoint(self, y: torch.Tensor) -> torch.Tensor:
        return blur_adjoint(y, self.kernel, self.border)
