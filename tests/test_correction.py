"""restore.correction: the frame-wide correction reaches the discrepancy level, leaves an anchor that
explains the data alone, keeps band-wise results close to the whole frame, and beats the plain
upsampling on a known truth (checked against the truth, not the code's own output)."""

from __future__ import annotations

import math

import pytest
import torch

from restore.correction import HIGHEST, LOWEST, correct, level_zones, plan_bands, stretch_stiffness
from restore.degradations import Blur, Downsample, GaussianNoise, PoissonGaussianNoise
from restore.domains.astronomy import Asinh


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
    fit = correct(A.double(), noise, y, count, plain, torch.ones_like(plain), target=1.0, iterations=400,
                  rule="discrepancy")
    assert fit.chi2 <= 1.0 and math.isfinite(fit.lam)
    M = _dense(A.double(), n)
    D = torch.cat([_dense(lambda v: v[..., 1:, :] - v[..., :-1, :], n), _dense(lambda v: v[..., :, 1:] - v[..., :, :-1], n)])
    # the weights at the 3 x 3 mean of the plain model (the documented guard against Pearson's bias)
    w = 1 / noise.variance(torch.nn.functional.avg_pool2d(A(plain.double()), 3, 1, 1, count_include_pad=False)).flatten()

    def tikhonov(lam: float) -> tuple[torch.Tensor, float]:
        x = torch.linalg.solve(M.T @ (w[:, None] * M) + lam * D.T @ D, M.T @ (w * (y.double().flatten() - noise.background)))
        return x, float((w * (y.double().flatten() - noise.background - M @ x) ** 2).mean())

    x, chi2 = tikhonov(fit.lam)
    assert torch.allclose((plain + fit.r).double().flatten(), x, atol=1e-2 * float(x.abs().max()))
    assert chi2 == pytest.approx(fit.chi2, rel=0.02)
    assert tikhonov(2 * fit.lam)[1] > 1.0  # a smoother solution no longer explains the data


@pytest.mark.parametrize("start", [-6.0, -1.0, 3.0])
def test_a_walk_started_at_a_neighbouring_bands_level_finds_the_same_weight(start: float) -> None:
    """Started below the answer (it climbs), near it, or above it: Morozov's weight, as from the top."""
    A = Downsample(2, "mean") * Blur.gaussian(2.0)
    noise = GaussianNoise(0.5)
    y = noise.sample(A(_scene(24)), generator=torch.Generator().manual_seed(0))
    plain = torch.nn.functional.interpolate(y, scale_factor=2, mode="bicubic")
    args = (A.double(), noise, y, torch.ones_like(y, dtype=torch.bool), plain, torch.ones_like(plain))
    top = correct(*args, iterations=400)
    fit = correct(*args, iterations=400, start=start)
    assert fit.chi2 <= 1.0 and fit.lam == pytest.approx(top.lam, rel=0.1) and fit.level == pytest.approx(top.level, abs=0.05)
    assert math.isfinite(top.level) and HIGHEST > top.level > LOWEST


@pytest.mark.parametrize("rule", ["discrepancy", "risk"])
def test_an_anchor_that_explains_the_data_is_left_alone(rule: str) -> None:
    """The truth as anchor: left alone; shifted data: the offset is found; noise drawn in: smoothed away."""
    A = Downsample(2, "mean")
    truth = _scene(32)
    noise = GaussianNoise(0.5)
    y = noise.sample(A(truth), generator=torch.Generator().manual_seed(1))
    ones, target = torch.ones_like(y, dtype=torch.bool), 1.0 if rule == "discrepancy" else 1.2
    fit = correct(A, noise, y, ones, truth, torch.zeros_like(truth), target=target, accept=(0.8, 1.2), rule=rule)
    assert fit.chi2_anchor < 1.2 and fit.lam == float("inf") and float(fit.r.abs().max()) == 0.0
    fit = correct(A, noise, y + 3.0, ones, truth, torch.zeros_like(truth), target=target, accept=(0.8, 1.2), rule=rule)
    assert fit.chi2_anchor > 1.2 and fit.chi2 <= target and float(fit.r.mean()) == pytest.approx(3.0, rel=0.05)
    overfit = truth + (y - A(truth)).repeat_interleave(2, -1).repeat_interleave(2, -2)  # the noise drawn in
    fit = correct(A, noise, y, ones, overfit, torch.zeros_like(truth), target=target, accept=(0.8, 1.2), rule=rule)
    assert fit.chi2_anchor < 0.8 and 0.8 <= fit.chi2 <= target  # noise fitting is smoothed away


def test_risk_rule_matches_the_closed_form_risk_and_fits_less_noise_than_morozov() -> None:
    """Against dense closed forms: the correction's dof is the trace of its hat matrix (within the
    one-probe Hutchinson error), the weight chosen is near the minimiser of the exact risk (Stein's, with
    the true trace) among weights with chi-square <= target, and its prediction error against the
    noise-free data is below that of Morozov's weight on the same data."""
    n, f, target = 24, 2, 1.1
    A = Downsample(f, "mean") * Blur.gaussian(2.0)
    truth = _scene(n)
    truth[..., 6, 6] += 400.0  # a bright point: the smooth penalty must be weak to fit it, which invites noise
    noise = GaussianNoise(0.5)
    clean = A(truth).double()
    y = noise.sample(A(truth), generator=torch.Generator().manual_seed(3))
    plain = torch.nn.functional.interpolate(y, scale_factor=f, mode="bicubic")
    count = torch.ones_like(y, dtype=torch.bool)
    M = _dense(A.double(), n)
    D = torch.cat([_dense(lambda v: v[..., 1:, :] - v[..., :-1, :], n), _dense(lambda v: v[..., :, 1:] - v[..., :, :-1], n)])
    w = 1 / 0.25

    def exact(lam: float) -> tuple[float, float, float]:
        """chi2, trace(H) / N and prediction error / (N sigma^2) of the Tikhonov solution for ``lam``."""
        S = torch.linalg.inv(M.T @ M * w + lam * D.T @ D)
        x = S @ (M.T @ (w * y.double().flatten()))
        H = w * M @ S @ M.T
        m = y.numel()
        return (float(w * ((y.double().flatten() - M @ x) ** 2).sum() / m), float(torch.trace(H)) / m,
                float(w * ((clean.flatten() - M @ x) ** 2).sum() / m))

    fits = {rule: correct(A.double(), noise, y, count, plain, torch.ones_like(plain), target=target,
                          iterations=400, rule=rule) for rule in ("risk", "discrepancy")}
    risky = fits["risk"]
    chi2, dof, _ = exact(risky.lam)
    assert risky.chi2 == pytest.approx(chi2, rel=0.02) and risky.chi2 <= target
    # 0 <= H <= I, so |H|_F^2 <= trace(H): one probe's standard error is at most sqrt(2 trace(H)) / N
    assert abs(risky.dof - dof) < 4 * math.sqrt(2 * dof / y.numel())
    grid = [risky.lam * 10.0**e for e in torch.linspace(-2, 2, 33).tolist()]
    feasible = [c + 2 * d for c, d, _ in map(exact, grid) if c <= target]
    assert chi2 + 2 * dof <= min(feasible) * 1.05
    assert exact(risky.lam)[2] < exact(fits["discrepancy"].lam)[2]


def test_bands_cover_every_row_once_with_margins_of_the_reach() -> None:
    plans = plan_bands(100, 4, 12, 16)
    kept = [r for p in plans for r in range(p.first, p.end)]
    assert kept == list(range(100))
    for p in plans:
        assert p.lo <= p.first * 4 - 12 or p.lo == 0
        assert p.hi >= p.end * 4 + 12 or p.hi == 400
        assert p.lo % 4 == 0 and p.hi % 4 == 0 and p.count_lo <= p.first and p.count_hi >= p.end


def test_zones_each_reach_the_discrepancy_level() -> None:
    """A bright compact source in one zone, smooth sky in the other: one weight for both fits the source's
    zone badly or the sky's noise; per-zone weights (the engine's regions) bring each zone's own
    chi-square, computed here from the residuals directly, into the consistency band."""
    n, f = 48, 2
    A = Downsample(f, "mean") * Blur.gaussian(2.0)
    truth = torch.full((1, 1, n, n), 5.0)
    truth[..., 10:13, 10:13] += 300.0
    noise = GaussianNoise(0.5)
    y = noise.sample(A(truth), generator=torch.Generator().manual_seed(4))
    plain = torch.nn.functional.interpolate(y, scale_factor=f, mode="bicubic")
    zones = torch.zeros(1, 1, n // f, n // f, dtype=torch.long)
    zones[..., :12, :12] = 1
    ones = torch.ones_like(y, dtype=torch.bool)

    def zone_chi2(fit) -> list[float]:
        sq = ((y - A(plain + fit.r)) / 0.5) ** 2
        return [float(sq[zones == z].mean()) for z in (0, 1)]

    one = correct(A, noise, y, ones, plain, torch.ones_like(plain), rounds=0, iterations=60)
    zoned = correct(A, noise, y, ones, plain, torch.ones_like(plain), rounds=8, iterations=60, zones=zones)
    assert not all(0.8 <= c <= 1.2 for c in zone_chi2(one))
    assert all(0.8 <= c <= 1.2 for c in zone_chi2(zoned)) and 0.8 <= zoned.chi2 <= 1.0


def test_a_very_bright_compact_source_is_fitted_to_the_discrepancy_level() -> None:
    """A compact source at a signal-to-noise of ~10^4 per pixel (8x sum binning) needs a weight far below the
    data term's curvature: the walk reaches it (with 10^-4 as the lowest relative weight it stopped at chi2 10.7)."""
    a = Downsample(8, "sum") * Blur.gaussian(6.0)
    yy, xx = torch.meshgrid(torch.arange(64.0), torch.arange(64.0), indexing="ij")
    truth = (400 * torch.exp(-((xx - 37.3) ** 2 + (yy - 21.6) ** 2) / 8))[None, None]
    noise = GaussianNoise(0.5)
    y = noise.sample(a(truth), generator=torch.Generator().manual_seed(0))
    assert float(y.max()) / 0.5 > 5000
    fit = correct(a, noise, y, torch.ones_like(y, dtype=torch.bool), torch.zeros_like(truth), torch.ones_like(truth),
                  accept=(0.8, 1.2))
    assert fit.chi2_anchor > 1e5 and 0.5 <= fit.chi2 <= 1.0


def test_a_per_pixel_stiffness_is_the_weighted_tikhonov_solution() -> None:
    """A smoothness weight varying 10^4-fold across the frame: against a dense solve of the normal equations
    whose differences carry the harmonic mean of the weight at their two pixels (preconditioned conjugate
    gradients reach it in 100 steps)."""
    n, f = 20, 2
    A = Downsample(f, "mean") * Blur.gaussian(2.0)
    noise = GaussianNoise(0.5)
    y = noise.sample(A(_scene(n)), generator=torch.Generator().manual_seed(1))
    plain = torch.nn.functional.interpolate(y, scale_factor=f, mode="bicubic")
    stiff = torch.ones(1, 1, n, n)
    stiff[..., :, n // 2 :] = 1e4
    fit = correct(A.double(), noise, y, torch.ones_like(y, dtype=torch.bool), plain, torch.ones_like(plain),
                  iterations=100, stiffness=stiff)
    assert 0.8 <= fit.chi2 <= 1.0
    lam = fit.lam * stiff.double()[0, 0]
    ly = 2 * lam[1:] * lam[:-1] / (lam[1:] + lam[:-1])
    lx = 2 * lam[:, 1:] * lam[:, :-1] / (lam[:, 1:] + lam[:, :-1])
    M = _dense(A.double(), n)
    Dy = _dense(lambda v: v[..., 1:, :] - v[..., :-1, :], n)
    Dx = _dense(lambda v: v[..., :, 1:] - v[..., :, :-1], n)
    w = 1 / noise.variance(torch.nn.functional.avg_pool2d(A(plain.double()), 3, 1, 1, count_include_pad=False)).flatten()
    normal = M.T @ (w[:, None] * M) + Dy.T @ (ly.flatten()[:, None] * Dy) + Dx.T @ (lx.flatten()[:, None] * Dx)
    x = torch.linalg.solve(normal, M.T @ (w * y.double().flatten()))
    assert torch.allclose((plain + fit.r).double().flatten(), x, atol=1e-2 * float(x.abs().max()))


def test_the_stretch_stiffness_keeps_the_faint_parts_of_a_bright_source_faint() -> None:
    """A bright compact core on a faint halo, sum-binned 4x: the penalty on gradients of the asinh-stretched
    image (not of the linear one) fits the core where the data demand it and keeps the halo smooth; the
    stretched error against the truth drops over tenfold, both at the discrepancy level."""
    n, f = 64, 4
    A = Downsample(f, "sum") * Blur.gaussian(3.0)
    yy, xx = torch.meshgrid(torch.arange(float(n)), torch.arange(float(n)), indexing="ij")
    r2 = (xx - 30.3) ** 2 + (yy - 33.6) ** 2
    truth = (3.0 * torch.exp(-r2 / 150) + 3000 * torch.exp(-r2 / 6))[None, None]
    noise = GaussianNoise(1.0)
    y = noise.sample(A(truth), generator=torch.Generator().manual_seed(0))
    plain = torch.nn.functional.interpolate(y, scale_factor=f, mode="bicubic") / f**2
    stretch = Asinh(1.0, 1000.0)
    ones = torch.ones_like(y, dtype=torch.bool)
    linear = correct(A, noise, y, ones, plain, torch.ones_like(plain), accept=(0.8, 1.2))
    stretched = correct(A, noise, y, ones, plain, torch.ones_like(plain), accept=(0.8, 1.2),
                        stiffness=stretch_stiffness(stretch.forward, plain))

    def error(fit) -> float:
        return float(((stretch.forward(plain + fit.r) - stretch.forward(truth)) ** 2).mean())

    assert 0.8 <= linear.chi2 <= 1.0 and 0.8 <= stretched.chi2 <= 1.0
    assert error(stretched) < 0.1 * error(linear)
    assert stretch_stiffness(lambda v: 3 * v - 1, plain) is None  # a linear normalisation: no map


def test_a_blended_anchor_is_corrected_whatever_its_plain_part() -> None:
    """An anchor ``s * prior + (1 - s) * plain`` with ``held`` its plain share: the penalty acts on that share
    and ``r`` together, so the image written depends on the prior's share only (two plain images, one result)."""
    A = Downsample(2, "mean") * Blur.gaussian(1.5)
    truth = _scene(32)
    noise = GaussianNoise(0.5)
    y = noise.sample(A(truth), generator=torch.Generator().manual_seed(2))
    yy, xx = torch.meshgrid(torch.arange(32.0), torch.arange(32.0), indexing="ij")
    prior = truth + 3 * torch.sin(xx / 1.3) * torch.cos(yy / 1.7)  # right coarse structure, wrong fine detail
    s, ones = 0.3, torch.ones_like(y, dtype=torch.bool)
    images = []
    for plain in (torch.zeros_like(truth), torch.full_like(truth, 40.0)):
        anchor = s * prior + (1 - s) * plain
        fit = correct(A, noise, y, ones, anchor, torch.full_like(truth, 1 - s), iterations=300, held=(1 - s) * plain)
        assert fit.chi2 <= 1.0 and math.isfinite(fit.lam)
        images.append(anchor + fit.r)
    assert torch.allclose(images[0], images[1], atol=1e-2 * float(truth.abs().max()))


def test_level_zones_keep_the_faint_sky_around_a_bright_core_from_fitting_noise() -> None:
    # a bright compact source (3000 sigma) the gradient penalty holds back, on a faint ripple: with one zone
    # its misfit is balanced by fitting the sky's noise (reduced chi-square ~0.01 there); split by level, the
    # discrepancy holds at both
    A = Downsample(2, "sum") * Blur.gaussian(2.0)
    yy, xx = torch.meshgrid(torch.arange(48.0), torch.arange(48.0), indexing="ij")
    truth = (3e3 * torch.exp(-((yy - 24) ** 2 + (xx - 24) ** 2) / 4.5) + 5 * torch.sin(xx / 3))[None, None]
    noise = GaussianNoise(1.0)
    y = noise.sample(A(truth), generator=torch.Generator().manual_seed(0))
    count = torch.ones_like(y, dtype=torch.bool)
    one = torch.zeros(1, 1, 24, 24, dtype=torch.long)
    far = ((torch.arange(24.0)[:, None] - 12) ** 2 + (torch.arange(24.0)[None] - 12) ** 2) > 36
    sky = {}
    for name, zones in (("one", one), ("levels", level_zones(one, y[0], count[0], noise, 6))):
        fit = correct(A, noise, y, count, torch.zeros_like(truth), torch.ones_like(truth), rounds=10, zones=zones)
        chi2 = ((y - A(fit.r)) ** 2)[0, 0]
        sky[name], core = float(chi2[far].mean()), float(chi2[~far].mean())
        if name == "levels":
            assert 0.8 <= core <= 1.2
    assert sky["one"] < 0.1
    assert 0.8 <= sky["levels"] <= 1.2
