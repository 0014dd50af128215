"""restore.engine: the prior test, point sources restored as points, nothing invented on blank sky, and
region reports (checked against the known truth)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from scipy import ndimage, stats

import restore
from restore.engine import prior_test, region_zones, restart_mean
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


def test_a_point_source_keeps_the_size_its_core_shows() -> None:
    """A star blurred by the telescope that took the scene (Gaussian sigma 1 sharp pixel, 0.96 pixel-integrated) is restored as a
    source of that size, not a delta: its size, flux and profile against the truth (scipy's blur)."""
    from scipy import ndimage

    truth = np.zeros((1, 96, 96), np.float32)
    truth[0, 40, 41] = 3000.0
    truth[0] = ndimage.gaussian_filter(truth[0], 1.0)
    spec = restore.load_recipe(RECIPES / "astronomy.yaml", FAST)
    res = restore.Pipeline(spec, progress=False).run(restore.simulate(spec, truth, seed=5))
    (point,) = [r for r in res.provenance["regions"] if r.get("model") == "point"]
    assert point["size"] == pytest.approx(0.96, abs=0.2) and point["flux"] == pytest.approx(3000.0, rel=0.05)

    error = res.image[0, 35:46, 36:47] - truth[0, 35:46, 36:47]
    assert np.sqrt(np.mean(error**2)) < 0.05 * truth.max()  # restored as a delta: 0.29 of the peak


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


def test_tiles_with_nothing_to_restore_keep_the_classical_restoration() -> None:
    """Flat test: a uniform field with blurred blobs in one quadrant; tiles that see only the level are left to
    the classical restoration (``model: flat``, prior not used, no prior spread), the others are searched."""
    truth = np.full((1, 128, 128), 50.0, np.float32)
    blobs = np.zeros((64, 64), np.float32)
    rng = np.random.default_rng(1)
    blobs[rng.integers(4, 60, 12), rng.integers(4, 60, 12)] = 4000.0
    truth[0, :64, 64:] += ndimage.gaussian_filter(blobs, 2.0)  # observed rows < 16, columns >= 16
    spec = restore.load_recipe(RECIPES / "microscopy.yaml", FAST)
    res = restore.Pipeline(spec, progress=False).run(restore.simulate(spec, truth, seed=2))
    regions = res.provenance["regions"]
    structured = [r["box"][0] < 16 and r["box"][1] + r["box"][3] > 16 for r in regions]
    assert len(regions) == 9 and sum(structured) == 4
    for region, busy in zip(regions, structured):
        assert ("model" in region) != busy
        if not busy:
            assert region["model"] == "flat" and not region["prior_used"] and region["dof"] == 255
            assert 0.0 < region["p_value"] and region["statistic"] < 1.5
    assert 0.8 <= res.chi2 <= 1.2 and res.consistent
    assert np.isnan(res.std[0, 64:, :64]).all()  # no prior spread where the prior was not used


def test_a_grey_observation_is_fitted_by_the_colour_priors_channel_mean() -> None:
    """A single plane through the RGB aerial prior: the search fits the mean of the prior's channels, so the
    grey of one of its own samples is restored (closer to the truth than the plain upsampling) as one plane."""
    spec = restore.load_recipe(RECIPES / "satellite.yaml", [*FAST[:3], "search.steps=60", "consistency.prior_weight=1",
                                                             "noise={kind: gaussian, sigma: 8.0}"])
    prior = restore.priors.load(spec.prior)
    with torch.no_grad():
        x = prior.generate(prior.sample_latent(1, torch.Generator().manual_seed(3))).clamp(-1, 1)
    truth = ((x[0].mean(0, keepdim=True) + 1) * 127.5).numpy()  # the sample's grey, 8-bit units
    pipe = restore.Pipeline(spec, progress=False)
    observed = restore.simulate(spec, truth, seed=1)
    res = pipe.run(observed)
    assert res.image.shape == (1, 64, 64) and res.provenance["planes_fitted_as"] == "prior channel mean"
    assert [r["prior_used"] for r in res.provenance["regions"]] == [True] and res.consistent

    def rmse(a: np.ndarray) -> float:
        return float(np.sqrt(np.mean((a - truth) ** 2)))

    assert rmse(res.image) < 0.8 * rmse(pipe.plain(observed))  # measured 11.5 against 16.9


def test_restart_mean_shrinks_monte_carlo_detail_and_keeps_the_rest() -> None:
    """Restarts = a shared image + independent fine texture (what few restarts disagree on): the shrunk mean is
    closer to the shared image than the plain mean (whose texture error is var / k, closed form), and restarts
    that differ only in coarse structure are averaged unchanged."""
    gen = torch.Generator().manual_seed(0)
    yy, xx = torch.meshgrid(torch.arange(32.0), torch.arange(32.0), indexing="ij")
    shared = (torch.sin(xx / 5) + torch.cos(yy / 7))[None]  # coarse: kept
    shared[:, 10:12, 10:12] += 2.0  # fine detail they all share: kept
    k, sd = 4, 0.5
    samples = shared + sd * torch.randn(k, 1, 32, 32, generator=gen)
    plain_err = float(((samples.mean(0) - shared) ** 2).mean())
    assert abs(plain_err - sd**2 / k) < 0.2 * sd**2 / k  # the Monte Carlo error of the mean
    shrunk = restart_mean(samples, 4.0)
    assert float(((shrunk - shared) ** 2).mean()) < 0.6 * plain_err
    assert float(shrunk[0, 10:12, 10:12].mean() - shared[0, 10:12, 10:12].mean()) > -0.3  # shared detail kept
    coarse = shared + torch.linspace(-1, 1, k)[:, None, None, None] * torch.sin(xx / 9)[None]
    assert torch.allclose(restart_mean(coarse, 4.0), coarse.mean(0), atol=0.05)


def test_overlapping_regions_keep_their_own_centres_in_their_zones() -> None:
    """A bright object's box overlapped by a later neighbour's: each pixel goes to the nearest box centre among
    the boxes covering it (before: the later box took the overlap, the object's own core included)."""
    zones = region_zones([[8, 7, 16, 16], [15, 13, 16, 16]], (32, 32))[0, 0]
    assert zones[15, 14] == 1 and zones[23, 21] == 2  # each centre in its own zone (the first's in the overlap)
    assert zones[0, 0] == 0 and zones[30, 28] == 2 and zones[31, 31] == 0 and zones[8, 7] == 1
    # an overlap pixel: the nearer centre wins (distances to (15.5, 14.5) and (22.5, 20.5))
    assert zones[19, 17] == 1 and zones[20, 19] == 2


def test_fitted_part_of_a_shifted_cutout_is_zero_where_its_signal_leaves_the_window() -> None:
    """Closed form: a 4x4 cutout shifted 2 sharp pixels right, 2x2 block mean; its right half lands outside the
    window (no fitted pixel sees it: 0), its left half on fitted pixels (1)."""
    import torch

    from restore.degradations import Downsample, Warp
    from restore.engine import _fitted

    shift = torch.tensor([[1.0, 0.0, 2.0], [0.0, 1.0, 0.0]])
    op = Downsample(2, "mean") * Warp(shift, (4, 4), (4, 4))
    part = _fitted(op, torch.ones(1, 2, 2, dtype=torch.bool))
    assert part[:, :2].tolist() == [[1.0, 1.0]] * 4 and part[:, 2:].tolist() == [[0.0, 0.0]] * 4
    half = torch.tensor([[[True, False], [True, False]]])  # only the window's left column fitted
    assert _fitted(op, half).tolist() == [[0.0, 0.0, 0.0, 0.0]] * 4  # the cutout lands on its right column


def test_resampled_cutout_is_pasted_only_where_its_search_fitted() -> None:
    """A face cutout scaled off the pixel grid at the frame's corner: the paste weight of each restored pixel
    is the part of its signal the search fitted (the window's pixels inside the frame, whole PSF covered)."""
    import torch

    from restore.domains import Observation
    from restore.engine import Engine
    from restore.geometry import Cutout

    spec = restore.load_recipe(RECIPES / "faces.yaml", FAST)
    pipe = restore.Pipeline(spec, progress=False)
    obs = Observation.from_array(np.full((3, 16, 16), 100.0, np.float32))
    engine = Engine(pipe.parts, obs)
    r = pipe.parts.prior.resolution
    ones = torch.ones(r, r)  # a flat window: the paste weight is then the fitted part itself
    (job, *_) = engine._cutout_jobs([Cutout(x=3.0, y=3.0, size=9.0)], ones)
    assert job.warp is not None and job.weight is not None and job.weight.shape == (r, r)
    assert float(job.weight.min()) == 0.0 and float(job.weight[r // 2, r // 2]) == pytest.approx(1.0)
    assert 0.0 <= float(job.weight.min()) and float(job.weight.max()) <= 1.0 + 1e-6
    outside = job.box[0] < 0 or job.box[1] < 0  # the window reaches past the frame's top or left
    assert outside and float(job.weight[0, 0]) == 0.0 and bool(torch.isfinite(job.weight).all())


def test_the_prior_weight_shares_the_image_between_the_prior_and_the_classical_solution() -> None:
    """Before the correction, the image is ``w * prior + (1 - w) * plain`` where the prior is used (closed form
    against the runs at w = 1 and the plain upsampling); at w = 0 nothing is searched: every region is the
    classical solution (``model: classical``), with no prior spread."""
    base = [*FAST[:3], "search.steps=60", "noise={kind: gaussian, sigma: 8.0}", "consistency.correct=false"]
    spec = restore.load_recipe(RECIPES / "satellite.yaml", base)
    prior = restore.priors.load(spec.prior)
    with torch.no_grad():
        x = prior.generate(prior.sample_latent(1, torch.Generator().manual_seed(3))).clamp(-1, 1)
    truth = ((x[0] + 1) * 127.5).numpy()  # one of the prior's own samples, 8-bit units: the prior is used
    observed = restore.simulate(spec, truth, seed=4)
    images = {}
    for w in (1.0, 0.5):
        pipe = restore.Pipeline(restore.load_recipe(RECIPES / "satellite.yaml", [*base, f"consistency.prior_weight={w}"]),
                                progress=False)
        res = pipe.run(observed)
        assert res.provenance["prior_weight"] == {"value": w, "from": "recipe"}
        assert all(r["prior_used"] for r in res.provenance["regions"])
        images[w] = res.image
    plain = pipe.plain(observed)
    np.testing.assert_allclose(images[0.5], 0.5 * images[1.0] + 0.5 * plain, atol=1e-3 * 255)
    res = restore.Pipeline(restore.load_recipe(RECIPES / "satellite.yaml", [*base[:-1], "consistency.prior_weight=0"]),
                           progress=False).run(observed)
    assert res.provenance["steps"] == 0 and np.isnan(res.std).all()
    assert [(r["model"], r["prior_used"]) for r in res.provenance["regions"]] == [("classical", False)]
    assert 0.8 <= res.chi2 <= 1.2
