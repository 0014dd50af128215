"""Base class of the linear forward operators and their composition.

Operators are ``nn.Module``s acting on ``(B, C, H, W)`` tensors. Each has an exact ``adjoint``
(checked by the operator test registry), and operators compose right to left: ``(A2 * A1)(x)``
is ``A2(A1(x))``.

Example:
    >>> import torch
    >>> from restore.degradations import Blur, Downsample
    >>> A = Downsample(2, "sum") * Blur.gaussian(1.5)
    >>> A(torch.ones(1, 1, 8, 8)).shape
    torch.Size([1, 1, 4, 4])
    >>> A.scale(), round(A.flat_gain(), 6), A.reach() >= 2
    (2, 4.0, True)
"""

from __future__ import annotations

import torch
from torch import nn


class LinearOperator(nn.Module):
    """A linear map between image grids with an exact adjoint."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def adjoint(self, y: torch.Tensor) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def output_size(self, height: int, width: int) -> tuple[int, int]:
        """Grid size of ``A(x)`` for an input of ``height x width``."""
        return height, width

    def scale(self) -> int:
        """How many sharp-grid pixels one observed pixel spans along each axis (the factor)."""
        return 1

    def flat_gain(self, size: int = 64) -> float:
        """The response to a flat image of ones, away from borders: ``f^2`` for sum binning, 1 for a mean."""
        n = max(size, 8 * self.scale())
        p = self._probe()
        with torch.no_grad():
            out = self(torch.ones(1, 1, n, n, dtype=p.dtype, device=p.device))
        return float(out[0, 0, out.shape[-2] // 2, out.shape[-1] // 2])

    def reach(self, limit: int = 4096) -> int:
        """Sharp rows beyond its own block that an observed row depends on, rounded up to whole blocks: a
        horizontal line is moved through the operator on a canvas large enough not to feel its edges;
        responses below a millionth of the peak (FFT rounding) do not count."""
        factor = self.scale()
        device = self._probe().device
        size = 16 * factor
        while size <= limit:
            x = torch.zeros(1, 1, size, size, device=device)
            block = size // factor // 2
            x[..., block * factor, :] = 1.0
            with torch.no_grad():
                response = self(x)[0, 0].abs().amax(1)
            touched = torch.nonzero(response > 1e-6 * response.max()).flatten().tolist()
            if touched and touched[0] > 0 and touched[-1] < size // factor - 1:
                return (max(block - touched[0], touched[-1] - block) + 1) * factor
            size *= 2
        raise ValueError(f"the forward model reaches further than {limit} pixels")

    def fuse(self, after: LinearOperator) -> LinearOperator | None:
        """One operator equal to ``after(self(x))`` and cheaper than the two, or None (the default)."""
        return None

    def _probe(self) -> torch.Tensor:
        """A tensor of the operator's float dtype and device (its first floating buffer; a float32 CPU scalar
        for operators without one), for the probes above."""
        return next((b for b in self.buffers() if b.is_floating_point()), torch.zeros(()))

    def __mul__(self, other: LinearOperator) -> Compose:
        return Compose([other, self])


class Compose(LinearOperator):
    """Apply operators in order: ``Compose([A1, A2])(x) == A2(A1(x))``; neighbours that fuse into one cheaper
    operator (:meth:`LinearOperator.fuse`: a PSF blur then block binning) are held fused."""

    def __init__(self, ops: list[LinearOperator]) -> None:
        super().__init__()
        flat: list[LinearOperator] = []
        for op in ops:
            for part in op.ops if isinstance(op, Compose) else [op]:
                fused = flat[-1].fuse(part) if flat else None
                if fused is None:
                    flat.append(part)
                else:
                    flat[-1] = fused
        self.ops = nn.ModuleList(flat)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for op in self.ops:
            x = op(x)
        return x

    def adjoint(self, y: torch.Tensor) -> torch.Tensor:
        for op in reversed(self.ops):
            y = op.adjoint(y)
        return y

    def output_size(self, height: int, width: int) -> tuple[int, int]:
        for op in self.ops:
            height, width = op.output_size(height, width)
        return height, width

    def scale(self) -> int:
        factor = 1
        for op in self.ops:
            factor *= op.scale()
        return factor


def _fold(y: torch.Tensor, before: int, after: int, mode: str, dim: int) -> torch.Tensor:
    """Adjoint of padding one axis by ``before`` and ``after`` in ``mode``: each padded value added back onto
    the pixel it copies."""
    n = y.shape[dim] - before - after
    x = y.narrow(dim, before, n).clone()
    if mode == "constant":
        return x
    for side, count in ((0, before), (1, after)):
        if not count:
            continue
        part = y.narrow(dim, 0 if side == 0 else before + n, count)
        if mode == "reflect":  # [x_p .. x_1] | x | [x_(n-2) .. x_(n-1-a)]
            x.narrow(dim, 1 if side == 0 else n - 1 - count, count).add_(part.flip(dim))
        elif mode == "replicate":
            x.narrow(dim, 0 if side == 0 else n - 1, 1).add_(part.sum(dim, keepdim=True))
        else:  # circular: [x_(n-p) .. x_(n-1)] | x | [x_0 .. x_(a-1)]
            x.narrow(dim, n - count if side == 0 else 0, count).add_(part)
    return x


def pad_adjoint(y: torch.Tensor, pads: tuple[int, int, int, int], mode: str) -> torch.Tensor:
    """Adjoint of ``F.pad(x, pads, mode)`` (``constant``, ``reflect``, ``replicate`` or ``circular``): folds
    padded borders back onto the pixels they copy.

    Example:
        >>> pad_adjoint(torch.ones(1, 1, 1, 6), (2, 1, 0, 0), "reflect")
        tensor([[[[1., 3., 2.]]]])
    """
    left, right, top, bottom = pads
    return _fold(_fold(y, left, right, mode, -1), top, bottom, mode, -2)
