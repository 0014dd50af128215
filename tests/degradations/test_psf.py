"""PSF kernels against astropy's kernels (an independent reference)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from astropy.convolution import AiryDisk2DKernel, Gaussian2DKernel, Moffat2DKernel
from astropy.io import fits

from restore.degradations.psf import (
    FWHM_TO_SIGMA,
    airy_psf,
    gaussian_psf,
    load_psf,
    moffat_gamma,
    moffat_psf,
    motion_psf,
    normalise_psf,
)


@pytest.mark.parametrize("mode", ["center", "oversample"])
@pytest.mark.parametrize("fwhm,size", [(1.5, 9), (3.0, 15), (5.0, 21)])
def test_gaussian_matches_astropy(mode: str, fwhm: float, size: int) -> None:
    ours = gaussian_psf(fwhm, size=size, mode=mode).numpy()
    ref = Gaussian2DKernel(fwhm * FWHM_TO_SIGMA, x_size=size, y_size=size, mode=mode, factor=10)
    ref = ref.array / ref.array.sum()
    assert np.abs(ours - ref).max() < 1e-3
    assert ours.sum() == pytest.approx(1.0, abs=1e-12)


@pytest.mark.parametrize("mode", ["center", "oversample"])
@pytest.mark.parametrize("fwhm,beta,size", [(2.0, 2.5, 15), (3.2, 3.5, 21), (4.0, 4.765, 25)])
def test_moffat_matches_astropy(mode: str, fwhm: float, beta: float, size: int) -> None:
    ours = moffat_psf(fwhm, beta, size=size, mode=mode).numpy()
    ref = Moffat2DKernel(moffat_gamma(fwhm, beta), beta, x_size=size, y_size=size, mode=mode, factor=10)
    ref = ref.array / ref.array.sum()
    assert np.abs(ours - ref).max() < 1e-3


@pytest.mark.parametrize("mode", ["center", "oversample"])
@pytest.mark.parametrize("radius,size", [(1.5, 15), (3.0, 31)])
def test_airy_matches_astropy(mode: str, radius: float, size: int) -> None:
    ours = airy_psf(radius, size=size, mode=mode).numpy()
    ref = AiryDisk2DKernel(radius, x_size=size, y_size=size, mode=mode, factor=10)
    ref = ref.array / ref.array.sum()
    assert np.abs(ours - ref).max() < 1e-3


def test_obstructed_airy_has_darker_core_and_brighter_rings() -> None:
    clear, obstructed = airy_psf(3.0, 0.0, size=31), airy_psf(3.0, 0.4, size=31)
    assert obstructed[15, 15] < clear[15, 15]
    assert obstructed.sum().item() == pytest.approx(1.0)


@pytest.mark.parametrize(
    "make",
    [lambda s: gaussian_psf(2.5, size=s), lambda s: moffat_psf(3.0, 3.0, size=s), lambda s: airy_psf(1.2, size=s)],
)
def test_automatic_size_holds_995_percent_of_energy(make) -> None:
    auto = make(None)
    big = make(1025 if auto.shape[0] < 1025 else auto.shape[0]).to(torch.float64)
    n, m = auto.shape[0], big.shape[0]
    lo = (m - n) // 2
    assert float(big[lo : lo + n, lo : lo + n].sum()) >= 0.995 - 1e-4


def test_gaussian_psf_is_differentiable_in_fwhm() -> None:
    fwhm = torch.tensor(2.5, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda f: gaussian_psf(f, size=9), (fwhm,))
    beta = torch.tensor(3.0, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda f, b: moffat_psf(f, b, size=9), (fwhm, beta))


def test_motion_psf_sums_to_one_and_lies_along_its_angle() -> None:
    k = motion_psf(7, 0.0)
    assert k.sum().item() == pytest.approx(1.0)
    centre = k.shape[0] // 2
    assert float(k[centre].sum()) > 0.95  # horizontal streak
    assert float(motion_psf(7, 90.0)[:, centre].sum()) > 0.95


def test_measured_psf_is_recentred_and_normalised(tmp_path) -> None:
    truth = gaussian_psf(3.0, size=15).numpy()
    shifted = np.zeros((20, 20))
    shifted[2:17, 4:19] = truth  # off-centre and even-sized
    path = tmp_path / "psf.fits"
    fits.PrimaryHDU(shifted).writeto(path)
    k = load_psf(path).numpy()
    assert k.shape[0] % 2 == 1 and k.shape[1] % 2 == 1
    assert k.sum() == pytest.approx(1.0)
    yy, xx = np.indices(k.shape)
    assert (k * yy).sum() == pytest.approx((k.shape[0] - 1) / 2, abs=1e-6)
    assert (k * xx).sum() == pytest.approx((k.shape[1] - 1) / 2, abs=1e-6)


def test_bad_psf_is_rejected() -> None:
    with pytest.raises(ValueError, match="fwhm must be > 0"):
        gaussian_psf(-1.0)
    with pytest.raises(ValueError, match="positive sum"):
        normalise_psf(np.zeros((3, 3)))
    with pytest.raises(ValueError, match="beta must be > 1"):
        moffat_psf(2.0, 1.0)
    assert math.isfinite(float(airy_psf(2.0, size=5).sum()))
