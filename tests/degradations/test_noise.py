"""Likelihoods against scipy.stats, and noise draws against their stated moments."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import stats

from restore.degradations import GaussianNoise, PoissonGaussianNoise, PoissonNoise


def _mu(rng: torch.Generator, low: float = 5.0, high: float = 50.0) -> torch.Tensor:
    return torch.rand(2, 3, 8, 9, generator=rng, dtype=torch.float64) * (high - low) + low


def test_gaussian_nll_and_chi2_match_scipy(rng) -> None:  # noqa: ANN001
    mu = _mu(rng)
    sigma = torch.rand(1, 3, 8, 9, generator=rng, dtype=torch.float64) + 0.5  # per-pixel map
    y = mu + torch.randn(mu.shape, generator=rng, dtype=torch.float64) * sigma
    lik = GaussianNoise(sigma)
    ref = -stats.norm.logpdf(y.numpy(), mu.numpy(), np.broadcast_to(sigma.numpy(), y.shape)).reshape(2, -1).sum(1)
    assert np.allclose(lik.nll(y, mu).numpy(), ref, rtol=1e-10)
    chi2 = (((y - mu) / sigma) ** 2).reshape(2, -1).sum(1)
    assert np.allclose(lik.reduced_chi2(y, mu).numpy(), (chi2 / y[0].numel()).numpy())


def test_poisson_nll_matches_scipy(rng) -> None:  # noqa: ANN001
    gain, sky = 2.5, 3.0
    mu = _mu(rng)
    lik = PoissonNoise(gain=gain, sky=sky)
    y = lik.sample(mu, generator=rng)
    k = (y * gain).round().numpy()
    lam = ((mu + sky) * gain).numpy()
    ref = -stats.poisson.logpmf(k, lam).reshape(2, -1).sum(1)
    assert np.allclose(lik.nll(y, mu).numpy(), ref, rtol=1e-9)
    pearson = ((k - lam) ** 2 / lam).reshape(2, -1).sum(1) / k[0].size
    assert np.allclose(lik.reduced_chi2(y, mu).numpy(), pearson, rtol=1e-9)


def test_poisson_gaussian_nll_matches_scipy_gaussian_approximation(rng) -> None:  # noqa: ANN001
    gain, rn, sky = 1.7, 4.0, 10.0
    mu = _mu(rng)
    lik = PoissonGaussianNoise(gain=gain, read_noise=rn, sky=sky)
    y = lik.sample(mu, generator=rng)
    sd = np.sqrt((mu.numpy() + sky) / gain + (rn / gain) ** 2)
    ref = -stats.norm.logpdf(y.numpy(), mu.numpy() + sky, sd).reshape(2, -1).sum(1)
    assert np.allclose(lik.nll(y, mu).numpy(), ref, rtol=1e-10)


@pytest.mark.parametrize(
    "lik,mean,var",
    [
        (GaussianNoise(3.0), lambda m: m, lambda m: 9.0 + 0 * m),
        (PoissonNoise(gain=2.0, sky=5.0), lambda m: m + 5.0, lambda m: (m + 5.0) / 2.0),
        (PoissonGaussianNoise(gain=0.5, read_noise=3.0, sky=1.0), lambda m: m + 1.0, lambda m: (m + 1.0) / 0.5 + 36.0),
    ],
    ids=["gaussian", "poisson", "poisson_gaussian"],
)
def test_draws_have_the_stated_mean_and_variance(lik, mean, var) -> None:  # noqa: ANN001
    gen = torch.Generator().manual_seed(7)
    m = torch.full((1, 1, 400, 500), 20.0, dtype=torch.float64)
    y = lik.sample(m, generator=gen)
    n = y.numel()
    mean_ref, var_ref = float(mean(m).mean()), float(var(m).mean())
    # 5-sigma bounds on the sample mean and variance
    assert abs(float(y.mean()) - mean_ref) < 5 * np.sqrt(var_ref / n)
    assert abs(float(y.var()) - var_ref) < 5 * var_ref * np.sqrt(2 / n) * 1.5
    assert 0.98 < float(lik.reduced_chi2(y, m)) < 1.02


def test_masked_and_nan_pixels_are_left_out(rng) -> None:  # noqa: ANN001
    mu = _mu(rng)
    lik = GaussianNoise(1.0)
    y = lik.sample(mu, generator=rng)
    mask = torch.ones_like(y, dtype=torch.bool)
    mask[..., :4, :] = False
    y_bad = y.clone()
    y_bad[..., :4, :] = 1e9
    y_bad[0, 0, 6, 6] = float("nan")
    ref_mask = mask.clone()
    ref_mask[0, 0, 6, 6] = False
    nll = lik.nll(y_bad, mu, mask)
    ref = -stats.norm.logpdf(y.numpy(), mu.numpy(), 1.0)
    assert np.allclose(nll.numpy(), np.where(ref_mask.numpy(), ref, 0).reshape(2, -1).sum(1))
    counts = ref_mask.reshape(2, -1).sum(1).numpy()
    chi2 = np.where(ref_mask.numpy(), ((y - mu) ** 2).numpy(), 0).reshape(2, -1).sum(1) / counts
    assert np.allclose(lik.reduced_chi2(y_bad, mu, mask).numpy(), chi2)
    chi = lik.chi(y_bad, mu, mask)
    assert torch.isnan(chi[~ref_mask]).all() and torch.isfinite(chi[ref_mask]).all()


def test_nll_is_differentiable_in_the_model(rng) -> None:  # noqa: ANN001
    mu = _mu(rng).requires_grad_(True)
    y = PoissonGaussianNoise(2.0, 3.0).sample(mu.detach(), generator=rng)
    assert torch.autograd.gradcheck(lambda m: PoissonGaussianNoise(2.0, 3.0).nll(y, m), (mu,))


def test_invalid_parameters_are_rejected() -> None:
    with pytest.raises(ValueError, match="sigma"):
        GaussianNoise(0.0)
    with pytest.raises(ValueError, match="gain"):
        PoissonNoise(gain=-1.0)
    with pytest.raises(ValueError, match="read_noise"):
        PoissonGaussianNoise(1.0, -2.0)
