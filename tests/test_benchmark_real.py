"""The real-data benchmark's second-draw floor (``benchmarks.real.draw_floor``) against closed forms."""

import numpy as np
import pytest
from scipy.fft import idctn

from benchmarks.real import draw_floor


def test_the_floor_of_one_dct_coefficient_is_its_shrinkage_over_the_values() -> None:
    coef = np.zeros((1, 8, 8))
    coef[0, 2, 3] = 3.0  # power 9 against sigma^2 = 1: shrunk by 0.9, one coefficient of 64
    image = idctn(coef, axes=(-2, -1), norm="ortho")
    assert draw_floor(image, 1.0) == pytest.approx(1 + 0.9 / 64, rel=1e-9)


def test_the_floor_takes_the_basis_in_which_the_image_is_sparser() -> None:
    image = np.zeros((1, 8, 8))
    image[0, :, :4], image[0, :, 4:] = 1.0, -1.0  # one Haar coefficient (8: power 64), many DCT ones
    haar = 1 + (64 / 65) / 64
    assert draw_floor(image, 1.0) == pytest.approx(haar, rel=1e-9)
    assert draw_floor(image * 100, 1.0) == pytest.approx(1 + 1 / 64, abs=1e-4)
