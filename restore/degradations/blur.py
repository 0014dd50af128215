"""Convolution of an image with a PSF (direct for small kernels, FFT for large ones), via Kornia; and a PSF
followed by block binning as one strided convolution (:func:`binned_blur`).

This is a true convolution (the kernel is flipped), so asymmetric PSFs (motion, measured) act as
physics says. Borders are padded (``"reflect"`` by default, ``"constant"`` for zeros) so the output
has the input's size.

Example:
    >>> import torch
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
from ._checks import check_bchw, check_choice, check_divisible, check_factor
from .base import LinearOperator, pad_adjoint
from .psf import airy_psf, gaussian_psf, moffat_psf
from .resample import Downsample, downsample, downsample_adjoint

FFT_THRESHOLD = 15  # kernels wider than this use FFT convolution
DIRECT_BINNED = 10  # a blur and f x f binning are fused while the effective kernel spans at most this many blocks
BINNINGS = ("mean", "sum")
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

    def fuse(self, after: LinearOperator) -> LinearOperator | None:
        """This blur then ``after``, as one :class:`BinnedBlur` where ``after`` bins (mean or sum) and the
        strided convolution is the cheaper (the effective kernel spans at most ``DIRECT_BINNED`` blocks)."""
        if not isinstance(after, Downsample) or after.method not in BINNINGS or after.factor == 1:
            return None
        if max(self.kernel.shape) + after.factor - 1 > DIRECT_BINNED * after.factor:
            return None
        return BinnedBlur(self.kernel, after.factor, after.method, self.border)


def binned_kernel(kernel: torch.Tensor, factor: int, method: str = "mean") -> torch.Tensor:
    """The effective kernel of a blur by ``kernel`` then ``factor x factor`` binning: ``kernel`` convolved with
    the box (of ones for ``"sum"``, of ``1 / f^2`` for ``"mean"``), ``(kH + f - 1, kW + f - 1)``.

    Example:
        >>> binned_kernel(torch.ones(1, 1), 2, "sum")
        tensor([[1., 1.],
                [1., 1.]])
    """
    check_factor(factor)
    check_choice(method, BINNINGS, "method")
    box = torch.ones(1, 1, factor, factor, dtype=kernel.dtype, device=kernel.device)
    box = box / factor**2 if method == "mean" else box
    return F.conv2d(F.pad(kernel[None, None], (factor - 1,) * 4), box)[0, 0]  # the box is symmetric: conv = corr


def _binned_weight(x: torch.Tensor, effective: torch.Tensor) -> torch.Tensor:
    return effective.flip(-2, -1).to(dtype=x.dtype, device=x.device).expand(x.shape[1], 1, -1, -1)


def _fits(kernel: torch.Tensor, x: torch.Tensor, factor: int = 1) -> bool:
    return kernel.shape[-2] <= 2 * x.shape[-2] * factor - 1 and kernel.shape[-1] <= 2 * x.shape[-1] * factor - 1


def binned_blur(x: torch.Tensor, kernel: torch.Tensor, factor: int, method: str = "mean",
                border: str = "reflect", effective: torch.Tensor | None = None) -> torch.Tensor:
    """``downsample(blur(x, kernel, border), factor, method)`` (``method`` ``"mean"`` or ``"sum"``) computed on
    the coarse grid only: one convolution with :func:`binned_kernel` (``effective``, when already made) at
    stride ``factor`` (``f^2`` fewer outputs than blurring the sharp grid), ``(B, C, H, W)`` to
    ``(B, C, H/f, W/f)``.

    Example:
        >>> from restore.degradations.psf import gaussian_psf
        >>> x, k = torch.rand(1, 2, 16, 24), gaussian_psf(2.0)
        >>> torch.allclose(binned_blur(x, k, 4), downsample(blur(x, k), 4, "mean"), atol=1e-6)
        True
    """
    _check(x, kernel, border)
    check_divisible(x, factor)
    if not _fits(kernel, x):
        return downsample(blur(x, kernel, border), factor, method)
    weight = _binned_weight(x, binned_kernel(kernel, factor, method) if effective is None else effective)
    return F.conv2d(F.pad(x, _pads(kernel), mode=border), weight, stride=factor, groups=x.shape[1])


def binned_blur_adjoint(y: torch.Tensor, kernel: torch.Tensor, factor: int, method: str = "mean",
                        border: str = "reflect", effective: torch.Tensor | None = None) -> torch.Tensor:
    """Adjoint of :func:`binned_blur`: the strided convolution transposed, then the borders folded back."""
    _check(y, kernel, border)
    check_factor(factor)
    if not _fits(kernel, y, factor):
        return blur_adjoint(downsample_adjoint(y, factor, method), kernel, border)
    weight = _binned_weight(y, binned_kernel(kernel, factor, method) if effective is None else effective)
    return pad_adjoint(F.conv_transpose2d(y, weight, stride=factor, groups=y.shape[1]), _pads(kernel), border)


class BinnedBlur(LinearOperator):
    """Module twin of :func:`binned_blur`: what ``Downsample(f, method) * Blur(kernel)`` becomes (the same values,
    faster: :meth:`Blur.fuse`).

    Example:
        >>> A = Downsample(4, "mean") * Blur.gaussian(2.0)
        >>> A.ops
        ModuleList(
          (0): BinnedBlur(kernel=(7, 7), factor=4, method='mean', border='reflect')
        )
    """

    def __init__(self, kernel: torch.Tensor, factor: int, method: str = "mean", border: str = "reflect") -> None:
        super().__init__()
        check_factor(factor)
        check_choice(method, BINNINGS, "method")
        check_choice(border, BORDERS, "border")
        self.register_buffer("kernel", kernel.detach().clone())
        self.register_buffer("effective", binned_kernel(self.kernel, factor, method))
        self.factor, self.method, self.border = factor, method, border

    def extra_repr(self) -> str:
        return f"kernel={tuple(self.kernel.shape)}, factor={self.factor}, method={self.method!r}, border={self.border!r}"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return binned_blur(x, self.kernel, self.factor, self.method, self.border, self.effective)

    def adjoint(self, y: torch.Tensor) -> torch.Tensor:
        return binned_blur_adjoint(y, self.kernel, self.factor, self.method, self.border, self.effective)

    def output_size(self, height: int, width: int) -> tuple[int, int]:
        return height // self.factor, width // self.factor

    def scale(self) -> int:
        return self.factor
