"""The chi map and chi-square of a restoration handed over a band of rows at a time.

The forward model is local: an observed row depends on its own block of ``factor`` sharp rows and on
``forward.reach()`` sharp rows beyond it. :class:`ChiMap` keeps that many finished sharp rows, applies
the forward model to each band with its margin and keeps only the observed rows whose inputs were all
there, so the result equals the forward model of the whole frame.

Example:
    >>> import torch
    >>> from restore.degradations import Blur, Downsample, GaussianNoise
    >>> A = Downsample(2) * Blur.gaussian(2.0)
    >>> x = torch.rand(1, 16, 16); y = A(x[None])[0]
    >>> chi = ChiMap(A, GaussianNoise(1.0), y, torch.ones_like(y, dtype=torch.bool))
    >>> chi.add(0, x[:, :8]); chi.add(8, x[:, 8:])
    >>> round(chi.result()[1], 6)
    0.0
"""

from __future__ import annotations

import torch

from .degradations.base import LinearOperator
from .degradations.noise import Likelihood, valid_mask


class ChiMap:
    """Accumulate ``chi = (y - E[y | A(x)]) / sd`` of observation ``y`` ``(C, h, w)`` (``mask``: pixels that
    count) from finished rows of ``x`` on the sharp grid, in order: ``add`` takes rows ``(C, n, w * f)``;
    ``result`` gives the chi map (NaN off the mask) and the reduced chi-square over every counted pixel.
    ``reach``: the forward model's, when the caller has measured it already."""

    def __init__(self, forward: LinearOperator, likelihood: Likelihood, y: torch.Tensor, mask: torch.Tensor,
                 reach: int | None = None) -> None:
        self.forward, self.likelihood, self.y, self.mask = forward, likelihood, y, mask
        self.factor = forward.scale()
        self.device = next(iter(forward.buffers()), y).device
        self.reach = forward.reach() if reach is None else reach  # the caller's, when it has measured it
        self.height = y.shape[-2] * self.factor
        self.chi = torch.full(y.shape, float("nan"))
        self.rows = torch.zeros(y.shape[0], 0, y.shape[-1] * self.factor)
        self.start = 0  # sharp row of self.rows[:, 0]
        self.done = 0  # observed rows computed so far
        self.chi2, self.count = 0.0, 0

    def add(self, top: int, rows: torch.Tensor) -> None:
        f = self.factor
        if top != self.start + self.rows.shape[1] or top % f or rows.shape[1] % f:
            raise ValueError(f"rows must come in order, in whole blocks of {f} (got {rows.shape[1]} at {top})")
        self.rows = torch.cat([self.rows, rows.float()], 1)
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
            y = self.y[None, :, first:end].to(self.device)
            mask = self.mask[None, :, first:end].to(self.device)
            self.chi[:, first:end] = self.likelihood.chi(y, mu, mask)[0].float().cpu()
            self.chi2 += float(self.likelihood.chi2(y, mu, mask)[0])
            self.count += int(valid_mask(y, mask).sum())
        keep = max(0, end * f - self.reach - self.start)
        self.rows, self.start, self.done = self.rows[:, keep:], self.start + keep, end

    def result(self) -> tuple[torch.Tensor, float]:
        if self.done < self.y.shape[-2]:
            raise ValueError(f"only {self.done} of {self.y.shape[-2]} observed rows were handed over")
        return self.chi, self.chi2 / max(self.count, 1)
