"""Likelihoods: one registry (``NOISES``) checked against scipy.stats, their own draws, masks, gradients
and devices; the noise estimate against a known sigma; noise values resolved from headers and data."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import stats

from restore.degradations import (
    GaussianNoise,
    Likelihood,
    PoissonGaussianNoise,
    PoissonNoise,
    estimate_sigma,
    resolve_noise,
)
from restore.errors import RestoreError
from restore.spec import GaussianNoiseSpec, PoissonGaussianNoiseSpec, PoissonNoiseSpec


def _scipy_gaussian(lik: GaussianNoise, y: np.ndarray, mu: np.ndarray) -> np.ndarray:
    return -stats.norm.logpdf(y, mu, float(lik.sigma))


def _scipy_poisson(lik: PoissonNoise, y: np.ndarray, mu: np.ndarray) -> np.ndarray:
    k = np.round((y - lik.offset) * lik.gain)
    return -stats.poisson.logpmf(k, lik.gain * (mu + lik.sky))


def _scipy_ccd(lik: PoissonGaussianNoise, y: np.ndarray, mu: np.ndarray) -> np.ndarray:
    var = (lik.gain * (mu + lik.sky) + lik.read_noise**2) / lik.gain**2
    return -stats.norm.logpdf(y, mu + lik.sky + lik.offset, np.sqrt(var))


NOISES = [
    pytest.param(GaussianNoise(1.7), _scipy_gaussian, id="gaussian"),
    pytest.param(PoissonNoise(2.5, sky=3.0), _scipy_poisson, id="poisson"),
    pytest.param(PoissonNoise(2.0, sky=1.0, offset=100.0), _scipy_poisson, id="poisson+offset"),
    pytest.param(PoissonGaussianNoise(2.0, 4.0, sky=10.0), _scipy_ccd, id="poisson_gaussian"),
    pytest.param(PoissonGaussianNoise(1.5, 3.0, sky=5.0, offset=-20.0), _scipy_ccd, id="poisson_gaussian+offset"),
]
"""Every noise model, with an independent reference NLL (per pixel) from scipy.stats."""


def _mu(rng: torch.Generator) -> torch.Tensor:
    return torch.rand(2, 3, 16, 16, generator=rng, dtype=torch.float64) * 45 + 5


@pytest.mark.parametrize(("lik", "reference"), NOISES)
def test_nll_matches_scipy(lik: Likelihood, reference, rng: torch.Generator) -> None:
    mu = _mu(rng)
    y = lik.sample(mu, generator=rng)
    ref = reference(lik, y.numpy(), mu.numpy()).reshape(2, -1).sum(1)
    assert np.allclose(lik.nll(y, mu).numpy(), ref, rtol=1e-6)


@pytest.mark.parametrize(("lik", "reference"), NOISES)
def test_own_draws_have_reduced_chi2_about_one_and_the_stated_background(lik: Likelihood, reference,
                                                                        rng: torch.Generator) -> None:
    mu = torch.full((1, 1, 256, 256), 30.0, dtype=torch.float64)
    y = lik.sample(mu, generator=rng)
    assert float(lik.reduced_chi2(y, mu)) == pytest.approx(1.0, abs=0.03)
    assert float(y.mean()) == pytest.approx(30.0 + lik.background, abs=0.1)
    assert float(lik.mean(torch.zeros(1))) == lik.background


@pytest.mark.parametrize(("lik", "reference"), NOISES)
def test_masked_and_nan_pixels_are_left_out(lik: Likelihood, reference, rng: torch.Generator) -> None:
    mu = _mu(rng)
    y = lik.sample(mu, generator=rng)
    mask = torch.rand(y.shape, generator=rng) > 0.3
    y_nan = y.clone()
    y_nan[~mask] = float("nan")
    keep = lambda t: torch.where(mask, t, 0).flatten(1).sum(1)  # noqa: E731
    full = lik.nll(y, mu, torch.ones_like(mask))
    assert torch.allclose(lik.nll(y, mu, mask), lik.nll(y_nan, mu))
    assert not torch.allclose(lik.nll(y, mu, mask), full)
    assert torch.isnan(lik.chi(y, mu, mask)[~mask]).all()
    assert torch.allclose(lik.chi2(y, mu, mask), keep(lik.chi(y, mu) ** 2))


@pytest.mark.parametrize(("lik", "reference"), NOISES)
def test_nll_is_differentiable_in_the_model(lik: Likelihood, reference, rng: torch.Generator) -> None:
    mu = _mu(rng)[:1, :1, :4, :4].requires_grad_(True)
    y = lik.sample(mu.detach(), generator=rng)
    assert torch.autograd.gradcheck(lambda m: lik.nll(y, m), (mu,), eps=1e-6, atol=1e-4)


@pytest.mark.parametrize(("lik", "reference"), NOISES)
def test_every_device_gives_the_same_nll_and_repr_states_the_parameters(lik: Likelihood, reference, device,
                                                                       rng: torch.Generator) -> None:
    mu = _mu(rng)
    y = lik.sample(mu, generator=rng)
    moved = lik.to(device)
    assert torch.allclose(moved.nll(y.to(device), mu.to(device)).cpu(), lik.nll(y, mu))
    assert repr(lik).count("=") >= 1


def test_invalid_parameters_are_rejected() -> None:
    for bad in (lambda: GaussianNoise(0.0), lambda: PoissonNoise(-1.0), lambda: PoissonNoise(1.0, sky=-1.0),
                lambda: PoissonGaussianNoise(1.0, -2.0), lambda: PoissonNoise(1.0, offset=math.inf)):
        with pytest.raises(ValueError):
            bad()


@pytest.mark.parametrize("sigma", [0.5, 3.0, 20.0])
def test_sigma_estimate_recovers_a_known_noise_under_structure(sigma: float) -> None:
    g = torch.Generator().manual_seed(0)
    yy, xx = torch.meshgrid(torch.arange(128.0), torch.arange(128.0), indexing="ij")
    scene = 100 + 0.5 * xx + 20 * torch.sin(yy / 15)  # smooth structure the estimate must ignore
    y = scene + sigma * torch.randn(scene.shape, generator=g)
    assert estimate_sigma(y) == pytest.approx(sigma, rel=0.08)
    with pytest.raises(ValueError, match="no measurable noise"):
        estimate_sigma(torch.full((32, 32), 5.0))
    with pytest.raises(ValueError, match="too few valid pixels"):
        estimate_sigma(y, torch.zeros_like(y, dtype=torch.bool))


def test_noise_values_resolve_from_header_and_data_alike() -> None:
    g = torch.Generator().manual_seed(1)
    y = 40.0 + 2.0 * torch.randn(1, 64, 64, generator=g)
    assert resolve_noise(GaussianNoiseSpec(sigma="estimate"), {}, y)["sigma"] == pytest.approx(2.0, rel=0.1)
    assert resolve_noise(GaussianNoiseSpec(sigma="from_header"), {"sigma": 3.0})["sigma"] == 3.0
    sky = resolve_noise(PoissonNoiseSpec(sky="estimate", offset=10.0), {}, y)["sky"]
    assert sky == pytest.approx(30.0, abs=0.2)  # the median less the noise-free offset
    ccd = torch.poisson(torch.full((1, 96, 96), 2.0 * 50.0), generator=g) / 2.0 + 4.0 * torch.randn(1, 96, 96, generator=g) / 2.0
    read = resolve_noise(PoissonGaussianNoiseSpec(gain=2.0, read_noise="estimate"), {}, ccd)["read_noise"]
    assert read == pytest.approx(4.0, rel=0.25)
    with pytest.raises(RestoreError, match="noise.gain from the header is -2"):
        resolve_noise(PoissonNoiseSpec(gain="from_header"), {"gain": -2.0})
    with pytest.raises(RestoreError, match="input states no sigma"):
        resolve_noise(GaussianNoiseSpec(sigma="from_header"), {})
    with pytest.raises(RestoreError, match="needs an observation"):
        resolve_noise(GaussianNoiseSpec(sigma="estimate"))
