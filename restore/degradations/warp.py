"""Affine resampling as a forward operator: a restored cutout, in the prior's framing, placed on the
frame's sharp grid (scaled and shifted) before the optics and the detector act on it.

Bilinear interpolation (Kornia's ``warp_affine``, pixel centres at integers); pixels of the output
that no input pixel reaches are zero. Where a matrix shrinks the image (``s`` input pixels per output
pixel, ``s > 1``) the input is first smoothed by a Gaussian of ``sigma = (s - 1) / 2`` input pixels,
scikit-image's anti-aliasing rule, so that detail finer than the output grid does not alias. The
adjoint is the exact transpose (the operator is linear).

Example:
    >>> import torch
    >>> shift = torch.tensor([[1.0, 0.0, 2.0], [0.0, 1.0, 0.0]])  # input pixel (x, y) lands at (x + 2, y)
    >>> warp(torch.arange(4.0).reshape(1, 1, 1, 4), shift, (1, 6)).round(decimals=4)
    tensor([[[[0., 0., 0., 1., 2., 3.]]]])
"""

from __future__ import annotations

import math

import torch
from kornia.filters import gaussian_blur2d
from kornia.geometry.transform import warp_affine

from ._checks import check_bchw
from .base import LinearOperator


def _check(x: torch.Tensor, matrices: torch.Tensor) -> torch.Tensor:
    check_bchw(x)
    m = matrices.reshape(-1, 2, 3).to(x)
    if m.shape[0] not in (1, x.shape[0]):
        raise ValueError(f"{m.shape[0]} affine matrices for a batch of {x.shape[0]}: give 1 or one per image")
    return m.expand(x.shape[0], -1, -1)


def antialias_sigma(matrices: torch.Tensor) -> torch.Tensor:
    """Gaussian ``sigma`` (input pixels) per matrix ``(B, 2, 3)``: ``(s - 1) / 2`` for ``s = 1 / sqrt|det|``
    input pixels per output pixel, zero where the matrix does not shrink."""
    scale = torch.linalg.det(matrices[:, :, :2].double()).abs().sqrt()
    return ((1 / scale - 1) / 2).clamp_min(0).to(matrices.dtype)


def warp(x: torch.Tensor, matrices: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Resample ``x`` ``(B, C, H, W)`` onto a ``size`` grid; input pixel ``p`` lands at ``M @ (p, 1)``
    (``matrices`` ``(2, 3)`` for all images, or ``(B, 2, 3)``), anti-aliased where ``M`` shrinks."""
    m = _check(x, matrices)
    sigma = antialias_sigma(m)
    if bool((sigma > 0.05).any()):  # below that the kernel is a delta to float precision
        side = 2 * math.ceil(3 * float(sigma.max())) + 1
        x = gaussian_blur2d(x, side, sigma.clamp_min(1e-3)[:, None].expand(-1, 2), border_type="reflect")
    return warp_affine(x, m, size, mode="bilinear", padding_mode="zeros", align_corners=True)


def warp_adjoint(y: torch.Tensor, matrices: torch.Tensor, in_size: tuple[int, int]) -> torch.Tensor:
    """Exact adjoint of :func:`warp` (the transpose of the interpolation), for inputs of ``in_size``."""
    with torch.enable_grad():
        x = torch.zeros((*y.shape[:2], *in_size), dtype=y.dtype, device=y.device, requires_grad=True)
        (grad,) = torch.autograd.grad(warp(x, matrices, tuple(y.shape[-2:])), x, y, create_graph=y.requires_grad)
    return grad


class Warp(LinearOperator):
    """:func:`warp` as an operator from ``in_size`` to ``out_size`` grids."""

    def __init__(self, matrices: torch.Tensor, in_size: tuple[int, int], out_size: tuple[int, int]) -> None:
        super().__init__()
        self.register_buffer("matrices", torch.as_tensor(matrices, dtype=torch.float32).reshape(-1, 2, 3))
        self.in_size, self.out_size = tuple(in_size), tuple(out_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return warp(x, self.matrices, self.out_size)  # type: ignore[arg-type]

    def adjoint(self, y: torch.Tensor) -> torch.Tensor:
        return warp_adjoint(y, self.matrices, self.in_size)  # type: ignore[arg-type]

    def output_size(self, height: int, width: int) -> tuple[int, int]:
        return self.out_size  # type: ignore[return-value]

    def extra_repr(self) -> str:
        return f"matrices={tuple(self.matrices.shape)}, in_size={self.in_size}, out_size={self.out_size}"
