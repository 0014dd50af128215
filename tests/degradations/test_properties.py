"""Property-based checks (hypothesis) of the forward models and likelihoods over random shapes, factors,
PSF widths and masks: no crash, the stated shapes, exact adjoints, masks that leave pixels out."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from restore.degradations import Blur, Downsample, GaussianNoise, PoissonGaussianNoise

FAST = settings(max_examples=25, deadline=None)


@FAST
@given(factor=st.integers(1, 5), blocks=st.tuples(st.integers(1, 6), st.integers(1, 6)), channels=st.integers(1, 3),
       fwhm=st.floats(0.5, 4.0), method=st.sampled_from(["bicubic", "sum", "mean"]),
       border=st.sampled_from(["reflect", "replicate", "constant", "circular"]), seed=st.integers(0, 2**16))
def test_forward_models_have_their_shapes_and_exact_adjoints(factor: int, blocks: tuple[int, int], channels: int,
                                                             fwhm: float, method: str, border: str, seed: int) -> None:
    h, w = blocks[0] * factor, blocks[1] * factor
    A = Downsample(factor, method) * Blur.gaussian(fwhm, border=border)
    if method == "bicubic" and factor > 1 and min(h, w) <= 3 * factor // 2:  # its taps reach beyond the image
        with pytest.raises(ValueError, match="too small for bicubic"):
            A(torch.zeros(1, channels, h, w))
        return
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(2, channels, h, w, generator=g, dtype=torch.float64)
    y = torch.randn(2, channels, h // factor, w // factor, generator=g, dtype=torch.float64)
    Ax = A.double()(x)
    assert Ax.shape == y.shape and A.output_size(h, w) == (h // factor, w // factor) and A.scale() == factor
    lhs, rhs = float((Ax * y).sum()), float((x * A.adjoint(y)).sum())
    assert abs(lhs - rhs) <= 1e-8 * (abs(lhs) + abs(rhs) + 1)


@FAST
@given(shape=st.tuples(st.integers(1, 3), st.integers(1, 9), st.integers(1, 9)), fraction=st.floats(0.0, 1.0),
       seed=st.integers(0, 2**16), ccd=st.booleans())
def test_masked_pixels_never_count(shape: tuple[int, int, int], fraction: float, seed: int, ccd: bool) -> None:
    g = torch.Generator().manual_seed(seed)
    lik = PoissonGaussianNoise(2.0, 3.0, sky=4.0, offset=10.0) if ccd else GaussianNoise(1.5)
    mu = torch.rand(1, *shape, generator=g, dtype=torch.float64) * 50
    y = lik.sample(mu, generator=g)
    mask = torch.rand(y.shape, generator=g) >= fraction
    changed = torch.where(mask, y, y + 1e6)  # whatever masked pixels hold, nothing changes
    assert torch.allclose(lik.nll(y, mu, mask), lik.nll(changed, mu, mask))
    assert torch.allclose(lik.chi2(y, mu, mask), lik.chi2(changed, mu, mask))
    assert int(torch.isfinite(lik.chi(y, mu, mask)).sum()) == int(mask.sum())
