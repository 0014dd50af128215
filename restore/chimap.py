"""The chi map and chi-square of a restoration handed over a band of rows at a time.

The forward model is local: an observed row depends on its own block of ``factor`` sharp rows and on
:func:`reach` sharp rows beyond it. :class:`ChiMap` keeps that many finished sharp rows, applies the
forward model to each band with its margin and keeps only the observed rows whose inputs were all
there, so the result equals the forward model of the whole frame.

Example:
    >>> import torch
    >>> from restore.degradations import Blur, Downsample, Compose
    >>> reach(Compose([Blur.gaussian(2.0), Downsample(2)]), 2) >= 2
    True
"""

from __future__ import annotations

import torch

from .degradations.base import LinearOperator
from .degradations.noise import Likelihood, valid_mask


def reach(forward: LinearOperator, factor: int, device: torch.device | str = "cpu", limit: int = 4096) -> int:
    """Sharp rows beyond its own block that an observed row depends on, rounded up to whole blocks (a
    horizontal line is moved through the forward model on a canvas large enough not to feel its edges;
    responses below a millionth of the peak, rounding in FFT convolutions, do not count)."""
    size = 16 * factor
    while size <= limit:
        x = torch.zeros(1, 1, size, size, device=device)
        block = size // factor // 2
        x[..., block * factor, :] = 1.0
        with torch.no_grad():
            response = forward(x)[0, 0].abs().amax(1)
        touched = torch.nonzero(response > 1e-6 * response.max()).flatten().tolist()  # above FFT rounding
        if touched and touched[0] > 0 and touched[-1] < size // factor - 1:
            return (max(block - touched[0], touched[-1] - block) + 1) * factor
        size *= 2
    raise ValueError(f"the forward model reaches further than {limit} pixels")


class ChiMap:
    """Accumulate ``chi = (y - E[y | A(x)]) / sd`` for planes ``planes`` of observation ``y`` ``(C, h, w)``
    (``mask``: pixels that count) from finished rows of ``x`` on the sharp grid, in order. ``add`` takes
    rows of every plane ``(C, n, w * factor)`` and the observed pixels that count in the chi-square for
    those rows (``None``: all valid ones); ``result`` gives the chi map (NaN off the mask and in the
    other planes) and the reduced chi-square."""

    def __init__(self, forward: LinearOperator, likelihood: Likelihood, y: torch.Tensor, mask: torch.Tensor,
                 planes: list[int], factor: int, device: torch.device | str = "cpu") -> None:  # fmt: skip
        self.forward, self.likelihood, self.y, self.mask = forward, likelihood, y, mask
        self.planes, self.factor, self.device = planes, factor, device
        self.reach = reach(forward, factor, device)
        self.height = y.shape[-2] * factor
        self.chi = torch.full(y.shape, float("nan"))
        self.fit = mask.clone()
        self.rows = torch.zeros(len(planes), 0, y.shape[-1] * factor)
        self.start = 0  # sharp row of self.rows[:, 0]
        self.done = 0  # observed rows computed so far
        self.chi2, self.count = 0.0, 0

    def add(self, top: int, rows: torch.Tensor, fit: torch.Tensor | None = None) -> None:
        f = self.factor
        if top != self.start + self.rows.shape[1] or top % f or rows.shape[1] % f:
            raise ValueError(f"rows must come in order, in whole blocks of {f} (got {rows.shape[1]} at {top})")
        self.rows = torch.cat([self.rows, rows[self.planes].float()], 1)
        if fit is not None:
            self.fit[:, top // f : top // f + fit.shape[1]] &= fit
        bottom = top + rows.shape[1]
        end = self.y.shape[-2] if bottom >= self.height else max(self.done, (bottom - self.reach) // f)
        if end > self.done:
            self._compute(self.done, end)

    def _compute(self, first: int, end: int) -> None:
        f = self.factor
        lo, hi = max(0, first * f - self.reach), min(self.height, end * f + self.reach)
        x = self.rows[:, lo - self.start : hi - self.start]
        with torch.no_grad():
            mu = self.forward(x[None].to(self.device))[:, :, first - lo // f : end - lo // f]
            y = self.y[self.planes, first:end][None].to(self.device)
            mask = self.mask[self.planes, first:end][None].to(self.device)
            fit = self.fit[self.planes, first:end][None].to(self.device)
            self.chi[self.planes, first:end] = self.likelihood.chi(y, mu, mask)[0].float().cpu()
            self.chi2 += float(self.likelihood.chi2(y, mu, fit)[0])
            self.count += int(valid_mask(y, fit).sum())
        keep = max(0, end * f - self.reach - self.start)
        self.rows, self.start, self.done = self.rows[:, keep:], self.start + keep, end

    def result(self) -> tuple[torch.Tensor, float]:
        if self.done < self.y.shape[-2]:
            raise ValueError(f"only {self.done} of {self.y.shape[-2]} observed rows were handed over")
        return self.chi, self.chi2 / max(self.count, 1)
