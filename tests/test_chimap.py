"""restore.chimap: the chi map built band by band equals the forward model of the whole frame."""

from __future__ import annotations

import pytest
import torch

from restore.chimap import ChiMap
from restore.degradations import Blur, Compose, Downsample, GaussianNoise, PoissonGaussianNoise


@pytest.mark.parametrize(
    ("forward", "likelihood"),
    [(Compose([Blur.moffat(6.0, 2.5, size=41), Downsample(4, "sum")]), PoissonGaussianNoise(2.0, 3.0, 10.0)),
     (Compose([Blur.gaussian(1.5), Downsample(4, "bicubic")]), GaussianNoise(0.1)),
     (Compose([Downsample(4, "mean")]), GaussianNoise(0.1))],
)
def test_chi_map_by_bands_equals_the_whole_frame(forward: Compose, likelihood, rng: torch.Generator, device) -> None:
    x = torch.rand(2, 160, 48, generator=rng) * 50 + 20
    with torch.no_grad():
        mu = forward(x[None])
    y = likelihood.sample(mu, generator=rng)[0]
    mask = torch.rand(y.shape, generator=rng) > 0.1
    whole_chi = likelihood.chi(y[None], mu, mask[None])[0]
    whole_chi2 = float(likelihood.reduced_chi2(y[None], mu, mask[None])[0])
    chi = ChiMap(forward.to(device), likelihood.to(device), y, mask)
    top = 0
    for n in (8, 4, 64, 12, 72):  # uneven bands, in whole blocks
        chi.add(top, x[:, top : top + n])
        top += n
    chi_map, chi2 = chi.result()
    assert torch.allclose(chi_map, whole_chi, atol=1e-4, equal_nan=True)
    assert chi2 == pytest.approx(whole_chi2, rel=1e-5)


def test_rows_out_of_order_are_an_error() -> None:
    chi = ChiMap(Compose([Downsample(2, "mean")]), GaussianNoise(1.0), torch.zeros(1, 4, 4),
                 torch.ones(1, 4, 4, dtype=torch.bool))
    with pytest.raises(ValueError, match="in order"):
        chi.add(2, torch.zeros(1, 2, 8))
