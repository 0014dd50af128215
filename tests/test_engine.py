"""restore.engine: the prior test, point sources restored as points, nothing invented on blank sky, and
region reports (checked against the known truth)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from scipy import stats

import restore
from restore.engine import prior_test
from tests.conftest import RECIPES

FAST = ["search.steps=30", "search.restarts=2", "search.refine_steps=0", "noise={kind: gaussian, sigma: 5.0}"]


def test_prior_test_is_the_chi_square_goodness_of_fit() -> None:
    n = 400
    edge = stats.chi2.ppf(1 - 1e-3, n) / n  # the reduced chi-square at p = alpha
    assert prior_test(edge * 0.999, n, 1e-3, 1.0)["prior_used"]
    assert not prior_test(edge * 1.001, n, 1e-3, 1.0)["prior_used"]
    assert prior_test(1.15, n, 1e-3, 1.2)["prior_used"]  # inside the consistency band: accepted
    t = prior_test(2.0, n, 1e-3, 1.2)
    assert t["dof"] == n and t["p_value"] == pytest.approx(stats.chi2.sf(2.0 * n, n)) and t["test"] == "chi2_gof"


def test_stars_are_restored_as_points_with_their_flux() -> None:
    truth = np.zeros((1, 96, 96), np.float32)
    truth[0, 40, 41], truth[0, 70, 20] = 3000.0, 900.0
    spec = restore.load_recipe(RECIPES / "astronomy.yaml", FAST)
    observed = restore.simulate(spec, truth, seed=3)
    res = restore.Pipeline(spec, progress=False).run(observed)
    points = [r for r in res.provenance["regions"] if r.get("model") == "point"]
    assert len(points) == 2 and not any(r["prior_used"] for r in res.provenance["regions"])
    assert sorted(r["flux"] for r in points) == pytest.approx([900.0, 3000.0], rel=0.05)
    assert np.unravel_index(np.argmax(res.image[0]), res.image[0].shape) == (40, 41)
    assert res.image[0, 39:42, 40:43].sum() == pytest.approx(3000.0, rel=0.05)  # a point, not a blob
    assert 0.8 <= res.chi2 <= 1.2 and res.consistent


def test_blank_sky_invents_nothing() -> None:
    """Nothing detected: no cutout is forced through the prior; the output is the classical restoration."""
    spec = restore.load_recipe(RECIPES / "astronomy.yaml", FAST)
    observed = restore.simulate(spec, np.zeros((1, 64, 64), np.float32), seed=4)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = restore.Pipeline(spec, progress=False).run(observed)
    assert res.provenance["regions"] == [] and res.provenance["prior_used"] == 0
    assert np.isnan(res.std).all()
    assert float(np.abs(res.image).max()) < 5 * 5.0 / 16 * 4  # no galaxy: a few noise sigmas (scene units) at most
    assert 0.8 <= res.chi2 <= 1.2
