"""Downsampling by an integer factor: PULSE-compatible bicubic, and flux-conserving area binning.

Pixel convention: observed pixel ``o`` is centred on the centre of the sharp-grid block
``[o*f, (o+1)*f)``, for every factor, so ``CRPIX' = (CRPIX - 0.5) / f + 0.5`` holds. For even
factors the bicubic kernel equals PULSE's ``BicubicDownSample`` (Keys a = -0.5, ``4f`` taps,
mirror padding ``3f / 2`` before). An even-length symmetric kernel cannot be centred on the middle
pixel of an odd-sized block, so PULSE's odd factors land half a sharp pixel off the block centre;
here odd factors use ``4f + 1`` taps (the Keys kernel sampled at integer multiples of ``1/f``,
its end taps zero) centred on the block's middle pixel, padded ``(3f + 1) / 2`` on each side.

Example:
    >>> import torch
    >>> downsample(torch.ones(1, 3, 8, 12), 4, "sum")[0, 0]
    tensor([[16., 16., 16.],
            [16., 16., 16.]])
"""

from __future__ import annotations

from typing import get_args

import torch
from torch.nn import functional as F

from ..spec.forward import DownsampleMethod
from ._checks import check_bchw, check_choice, check_divisible, check_factor
from .base import LinearOperator, pad_adjoint

Method = DownsampleMethod
METHODS = get_args(DownsampleMethod)


def keys_cubic(x: torch.Tensor, a: float = -0.5) -> torch.Tensor:
    """Keys' cubic convolution kernel with parameter ``a`` (-0.5 is PULSE's and Matlab's choice)."""
    ax = x.abs()
    near = (a + 2) * ax**3 - (a + 3) * ax**2 + 1
    far = a * ax**3 - 5 * a * ax**2 + 8 * a * ax - 4 * a
    return torch.where(ax <= 1, near, torch.where(ax < 2, far, torch.zeros_like(ax)))


def bicubic_taps(factor: int, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """The normalised 1-D taps of the bicubic downsampling kernel: ``4f`` (even ``f``) or ``4f + 1`` (odd)."""
    size = 4 * factor + factor % 2
    positions = (torch.arange(size, dtype=dtype) - (size - 1) / 2) / factor
    taps = keys_cubic(positions)
    return taps / taps.sum()


def _bicubic_pads(factor: int) -> tuple[int, int]:
    total = 4 * factor + factor % 2 - factor
    return total // 2, total - total // 2


def _check(x: torch.Tensor, factor: int, method: str, divisible: bool = True) -> None:
    check_bchw(x)
    check_factor(factor)
    check_choice(method, METHODS, "method")
    h, w = x.shape[-2:]
    if divisible:
        check_divisible(x, factor)
    if method == "bicubic" and factor > 1 and divisible and min(h, w) <= max(_bicubic_pads(factor)):
        raise ValueError(f"image size {h}x{w} is too small for bicubic downsampling by {factor} "
                         f"(needs more than {max(_bicubic_pads(factor))} pixels a side)")


def _bicubic_weight(x: torch.Tensor, factor: int) -> tuple[torch.Tensor, torch.Tensor]:
    taps = bicubic_taps(factor).to(dtype=x.dtype, device=x.device)
    channels = x.shape[1]
    vertical = taps.reshape(1, 1, -1, 1).expand(channels, 1, -1, 1)
    horizontal = taps.reshape(1, 1, 1, -1).expand(channels, 1, 1, -1)
    return vertical, horizontal


def downsample(x: torch.Tensor, factor: int, method: Method = "bicubic", border: str = "reflect") -> torch.Tensor:
    """Reduce ``(B, C, H, W)`` to ``(B, C, H/f, W/f)``.

    ``"bicubic"``: PULSE's antialiased bicubic (mirror-padded); ``"sum"``: sum of each ``f x f``
    block (conserves total flux: counts, electrons); ``"mean"``: block average (surface brightness).
    """
    _check(x, factor, method)
    if factor == 1:
        return x
    if method == "sum":
        return F.avg_pool2d(x, factor) * factor**2
    if method == "mean":
        return F.avg_pool2d(x, factor)
    before, after = _bicubic_pads(factor)
    vertical, horizontal = _bicubic_weight(x, factor)
    x = F.conv2d(F.pad(x, (0, 0, before, after), mode=border), vertical, stride=(factor, 1), groups=x.shape[1])
    return F.conv2d(F.pad(x, (before, after, 0, 0), mode=border), horizontal, stride=(1, factor), groups=x.shape[1])


def downsample_adjoint(y: torch.Tensor, factor: int, method: Method = "bicubic", border: str = "reflect") -> torch.Tensor:
    """Adjoint of :func:`downsample`: ``(B, C, h, w)`` to ``(B, C, h*f, w*f)``."""
    _check(y, factor, method, divisible=False)
    if factor == 1:
        return y
    if method in ("sum", "mean"):
        up = y.repeat_interleave(factor, dim=-2).repeat_interleave(factor, dim=-1)
        return up if method == "sum" else up / factor**2
    before, after = _bicubic_pads(factor)
    vertical, horizontal = _bicubic_weight(y, factor)
    groups = y.shape[1]
    # transpose of the strided horizontal pass; output_padding restores the padded width exactly
    width_padded = y.shape[-1] * factor + before + after
    extra_w = width_padded - ((y.shape[-1] - 1) * factor + horizontal.shape[-1])
    y = F.conv_transpose2d(y, horizontal, stride=(1, factor), groups=groups, output_padding=(0, extra_w))
    y = pad_adjoint(y, (before, after, 0, 0), border)
    height_padded = y.shape[-2] * factor + before + after
    extra_h = height_padded - ((y.shape[-2] - 1) * factor + vertical.shape[-2])
    y = F.conv_transpose2d(y, vertical, stride=(factor, 1), groups=groups, output_padding=(extra_h, 0))
    return pad_adjoint(y, (0, 0, before, after), border)


class Downsample(LinearOperator):
    """Module twin of :func:`downsample`.

    Example:
        >>> import torch
        >>> Downsample(2, "mean")(torch.ones(1, 1, 4, 6)).shape
        torch.Size([1, 1, 2, 3])
    """

    def __init__(self, factor: int, method: Method = "bicubic", border: str = "reflect") -> None:
        super().__init__()
        check_factor(factor)
        check_choice(method, METHODS, "method")
        self.factor, self.method, self.border = factor, method, border

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return downsample(x, self.factor, self.method, self.border)

    def adjoint(self, y: torch.Tensor) -> torch.Tensor:
        return downsample_adjoint(y, self.factor, self.method, self.border)

    def output_size(self, height: int, width: int) -> tuple[int, int]:
        return height // self.factor, width // self.factor

    def scale(self) -> int:
        return self.factor

    def extra_repr(self) -> str:
        return f"factor={self.factor}, method={self.method!r}, border={self.border!r}"
