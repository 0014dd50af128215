"""Latent search: recovery of a known truth, sphere projection, GEOCROSS, best-iterate rule, PULSE preset."""

from __future__ import annotations

import math

import pytest
import torch
from torch.nn import functional as F

from restore.degradations import Blur, Downsample, GaussianNoise
from restore.priors import DCGANGenerator, Prior, StyleGAN2Generator
from restore.search import (
    Problem,
    SearchConfig,
    geocross,
    latent_search,
    lr_schedule,
    project_to_sphere,
    pulse_loss,
    refine,
)
from restore.spec import PRESETS


def tiny_stylegan(seed: int = 1, size: int = 32) -> Prior:
    torch.manual_seed(seed)
    g = StyleGAN2Generator(size, 32, 2, {4: 32, 8: 32, 16: 16, 32: 16})
    prior = Prior(g, {"name": "tiny-stylegan2", "resolution": size, "channels": 3, "latent_dim": 32})
    prior.fit_latent_stats(2000)
    return prior


def tiny_dcgan(seed: int = 2) -> Prior:
    torch.manual_seed(seed)
    return Prior(DCGANGenerator(16, 32, 8), {"name": "tiny-dcgan", "resolution": 32, "channels": 3, "latent_dim": 16})


def psnr(a: torch.Tensor, truth: torch.Tensor) -> float:
    peak = float(truth.max() - truth.min())
    return 10 * math.log10(peak**2 / float(((a - truth) ** 2).mean()))


@pytest.mark.parametrize("make_prior", [tiny_stylegan, tiny_dcgan], ids=["stylegan2", "dcgan"])
def test_search_recovers_a_known_truth(make_prior) -> None:
    prior = make_prior()
    with torch.no_grad():
        # the truth's latent lies on the sphere the search explores (PULSE's high-dimensional assumption)
        z = project_to_sphere(prior.sample_latent(1, torch.Generator().manual_seed(5)), prior.latent_radius())
        truth = prior.generate(z)
    forward = Downsample(4, "bicubic") * Blur.gaussian(1.0)
    sigma = 0.1 * float(truth.std())
    likelihood = GaussianNoise(sigma)
    y = likelihood.sample(forward(truth), torch.Generator().manual_seed(0))
    config = SearchConfig(refine_steps=0, latent="z", restarts=4, steps=500, lr=0.3, progress=False)
    res = latent_search(Problem(prior, forward, likelihood), y, config, seed=0)
    restored = res.images[res.consistent].mean(0, keepdim=True)
    bicubic = F.interpolate(y, scale_factor=4, mode="bicubic", align_corners=False)
    assert bool(res.consistent.any())
    assert 0.8 <= float(likelihood.reduced_chi2(y, forward(restored))) <= 1.2 or bool(res.consistent.all())
    assert all(0.8 <= float(c) <= 1.2 for c in res.chi2[res.consistent])
    assert psnr(restored, truth) >= psnr(bicubic, truth) + 3.0


def test_sphere_projection_keeps_norms_at_their_initial_value() -> None:
    prior = tiny_stylegan()
    forward, likelihood = Downsample(4, "mean"), GaussianNoise(0.1)
    y = torch.randn(1, 3, 8, 8)
    for space, radius in (("w+", math.sqrt(32)), ("w", math.sqrt(32)), ("z", math.sqrt(32))):
        config = SearchConfig(refine_steps=0, latent=space, restarts=2, steps=3, lr=0.5, noise_maps=True, progress=False, early_stop=False)
        from restore.search import Latents  # the latent parametrisation, public

        lat = Latents(prior, config, 2, torch.Generator().manual_seed(0), torch.device("cpu"))
        norms0 = lat.latent.detach().norm(dim=-1)
        assert torch.allclose(norms0, torch.full_like(norms0, radius), atol=1e-5)
        opt = torch.optim.Adam(lat.parameters(), lr=0.5)
        for _ in range(3):
            loss = likelihood.nll(y.repeat(2, 1, 1, 1), forward(lat.render())).sum()
            opt.zero_grad()
            loss.backward()
            opt.step()
            lat.project()
        assert torch.allclose(lat.latent.detach().norm(dim=-1), norms0, atol=1e-5)
        for t, r in zip(lat.noise, lat.noise_radii):
            if t.requires_grad:
                assert torch.allclose(t.detach().flatten(1).norm(dim=1), torch.full((2,), r), atol=1e-4)


def test_uniform_latents_use_radius_sqrt_d_over_3() -> None:
    prior = Prior(DCGANGenerator(12, 8, 4), {"resolution": 8, "channels": 3, "latent_dim": 12,
                                              "latent_distribution": "uniform"})
    assert prior.latent_radius() == pytest.approx(2.0)
    z = prior.sample_latent(20000, torch.Generator().manual_seed(0))
    assert float(z.norm(dim=1).mean()) == pytest.approx(2.0, rel=0.02)


def test_project_to_sphere() -> None:
    x = torch.randn(3, 4, 5)
    project_to_sphere(x, 2.0)
    assert torch.allclose(x.norm(dim=-1), torch.full((3, 4), 2.0))


def test_geocross_zero_for_tiled_and_matches_hand_computation() -> None:
    row = torch.randn(1, 1, 64)
    assert float(geocross(row.expand(2, 5, 64))[0]) == pytest.approx(0.0, abs=1e-5)
    u, v = torch.zeros(64), torch.zeros(64)
    u[0], v[1] = 3.0, 3.0  # orthogonal: geodesic angle pi/2
    latent = torch.stack([u, v])[None]
    # mean over the 2x2 pair matrix of angle^2 * D, divided by 8 (PULSE): 2 * (pi/2)^2 * 64 / 4 / 8
    expected = 2 * (math.pi / 2) ** 2 * 64 / 4 / 8
    assert float(geocross(latent)[0]) == pytest.approx(expected, rel=1e-5)


def test_pulse_loss_equals_the_reference_formula() -> None:
    gen = torch.Generator().manual_seed(3)
    y = torch.rand(2, 3, 4, 4, generator=gen) * 2 - 1
    mu = torch.rand(2, 3, 4, 4, generator=gen) * 2 - 1
    latent = torch.randn(2, 6, 16, generator=gen)
    valid = torch.ones_like(y, dtype=torch.bool)
    loss, l2 = pulse_loss(y, mu, valid, latent)
    # PULSE: images in [0, 1], L2 = mean squared error per image, clamped at eps = 2e-3
    ref_l2 = (((mu + 1) / 2 - (y + 1) / 2) ** 2).mean((1, 2, 3))
    x, yy = latent.view(-1, 1, 6, 16), latent.view(-1, 6, 1, 16)
    a = ((x - yy).pow(2).sum(-1) + 1e-9).sqrt()
    b = ((x + yy).pow(2).sum(-1) + 1e-9).sqrt()
    ref_geo = ((2 * torch.atan2(a, b)).pow(2) * 16).mean((1, 2)) / 8.0
    assert torch.allclose(l2, ref_l2)
    assert torch.allclose(loss, 100 * ref_l2.clamp(min=2e-3) + 0.05 * ref_geo)
    small, _ = pulse_loss(y, y + 1e-3, valid, None)
    assert torch.allclose(small, torch.full((2,), 100 * 2e-3))


def test_best_iterate_rule_returns_the_lowest_objective_not_the_last() -> None:
    prior = tiny_dcgan()
    forward, likelihood = Downsample(4, "mean"), GaussianNoise(0.05)
    with torch.no_grad():
        y = likelihood.sample(forward(prior.generate(prior.sample_latent(1, torch.Generator().manual_seed(9)))),
                              torch.Generator().manual_seed(1))
    # unreachable consistency range and a wild fixed learning rate: the objective goes up and down
    config = SearchConfig(refine_steps=0, latent="z", restarts=3, steps=40, lr=2.0, schedule="fixed", chi2_range=(1e-9, 2e-9),
                          progress=False)
    problem = Problem(prior, forward, likelihood)
    res = latent_search(problem, y, config, seed=0)
    lowest, step = res.history.min(0)
    assert torch.allclose(res.objective, lowest)
    assert torch.equal(res.steps, step)
    assert not bool(res.consistent.any())
    assert bool((res.history[-1] > lowest).any())  # the last iterate was not the best for some restart
    n = y[0].numel()
    again = likelihood.nll(y.repeat(3, 1, 1, 1), forward(res.images)) / n
    assert torch.allclose(again, res.objective, rtol=1e-4)


def test_search_stops_at_the_first_consistent_iterate() -> None:
    prior = tiny_dcgan()
    forward, likelihood = Downsample(4, "mean"), GaussianNoise(0.05)
    y = torch.zeros(2, 3, 8, 8)
    config = SearchConfig(refine_steps=0, latent="z", restarts=2, steps=50, chi2_range=(0.0, 1e12), progress=False)
    res = latent_search(Problem(prior, forward, likelihood), y, config, seed=0)
    assert res.steps_run == 1 and bool(res.consistent.all()) and torch.equal(res.steps, torch.zeros(4, dtype=torch.long))


def test_pulse_preset_returns_the_last_iterate_and_flags_eps() -> None:
    prior = tiny_stylegan()
    forward, likelihood = Downsample(4, "bicubic"), GaussianNoise(0.05)
    y = torch.randn(1, 3, 8, 8) * 3  # far from anything the prior makes: L2 never reaches eps
    config = SearchConfig(**{**PRESETS["pulse"], "steps": 5}, progress=False)  # type: ignore[arg-type]
    res = latent_search(Problem(prior, forward, likelihood), y, config, seed=0)
    assert res.steps_run == 5 and torch.equal(res.steps, torch.full((1,), 4))
    assert not bool(res.consistent.any())


def test_runs_are_repeatable_with_a_seed() -> None:
    prior = tiny_stylegan()
    forward, likelihood = Downsample(4, "bicubic"), GaussianNoise(0.1)
    y = torch.randn(1, 3, 8, 8)
    config = SearchConfig(refine_steps=0, restarts=2, steps=5, progress=False, early_stop=False)
    a = latent_search(Problem(prior, forward, likelihood), y, config, seed=4)
    b = latent_search(Problem(prior, forward, likelihood), y, config, seed=4)
    c = latent_search(Problem(prior, forward, likelihood), y, config, seed=5)
    assert torch.equal(a.images, b.images) and not torch.equal(a.images, c.images)


def test_search_runs_on_the_device_of_its_observation(device) -> None:
    """Same seed, same start on every device; results live on the observation's device, and the
    objective's path over a few steps agrees with the CPU's to the precision of the accelerator's
    float32 convolutions (TF32 on recent GPUs). The returned iterate is not compared: which step wins
    the best-iterate rule may flip on rounding."""
    forward, likelihood = Downsample(4, "bicubic") * Blur.gaussian(1.0), GaussianNoise(0.1)
    y = torch.randn(2, 3, 8, 8, generator=torch.Generator().manual_seed(3))
    config = SearchConfig(restarts=2, steps=4, refine_steps=3, noise_maps=True, progress=False, early_stop=False)
    prior = tiny_stylegan()
    on_cpu = latent_search(Problem(prior, forward, likelihood), y, config, seed=1)
    there = latent_search(Problem(prior.to(device), forward.to(device), likelihood.to(device)), y.to(device), config, seed=1)
    assert there.images.device.type == device.type and there.consistent.device.type == device.type
    assert torch.allclose(there.history.cpu(), on_cpu.history, rtol=1e-2)
    assert bool(torch.isfinite(there.chi2).all())


def test_schedules() -> None:
    f = lr_schedule("linear1cycledrop", 100)
    assert f(0) == pytest.approx(0.1) and f(45) == pytest.approx(1.0) and f(90) == pytest.approx(0.1)
    assert f(100) == pytest.approx(1e-3)
    assert lr_schedule("cosine", 10)(10) == pytest.approx(0.0, abs=1e-12)
    with pytest.raises(ValueError):
        lr_schedule("nope", 10)


def test_second_stage_lowers_the_data_misfit_within_its_ball() -> None:
    """The second stage compares the data term alone (Gaussian noise: NLL and chi-square agree in order)."""
    prior = tiny_dcgan()
    forward, likelihood = Downsample(4, "mean"), GaussianNoise(0.02)
    y = torch.rand(1, 3, 8, 8, generator=torch.Generator().manual_seed(0)) * 2 - 1  # not in the prior's range
    base = SearchConfig(refine_steps=0, latent="z", restarts=2, steps=20, progress=False)
    first = latent_search(Problem(prior, forward, likelihood), y, base, seed=0)
    refined = latent_search(Problem(prior, forward, likelihood), y, SearchConfig(**{**base.__dict__, "refine_steps": 30}), seed=0)
    assert bool((refined.chi2 <= first.chi2 + 1e-6).all()) and bool((refined.chi2 < first.chi2).any())
    assert torch.equal(refined.objective, first.objective)  # stage one's objective, as documented
    change = (refined.images - first.images).flatten(1).norm(dim=1)
    assert bool((change <= base.refine_radius * first.images.flatten(1).norm(dim=1) + 1e-4).all())


def test_second_stage_with_per_item_normalisation_leaves_consistent_items_alone() -> None:
    """Per-item (per-plane) normalisations cover the whole batch: the second stage must run on it whole,
    changing only the items that are not yet consistent."""
    prior = tiny_dcgan()
    forward, likelihood = Downsample(4, "mean"), GaussianNoise(0.02)
    low = torch.tensor([0.0, 10.0, 0.0, 10.0]).reshape(-1, 1, 1, 1)  # 2 observations x 2 restarts
    problem = Problem(prior, forward, likelihood, lambda v: (v + 1) / 2 + low, lambda x: (x - low) * 2 - 1)
    y = torch.rand(2, 3, 8, 8, generator=torch.Generator().manual_seed(0)) + torch.tensor([0.0, 10.0]).reshape(-1, 1, 1, 1)
    config = SearchConfig(latent="z", restarts=2, steps=5, refine_steps=0, progress=False, early_stop=False)
    first = latent_search(problem, y, config, seed=0)
    first.consistent[1] = True  # pretend: one item is already consistent
    yy = y.repeat_interleave(2, 0)
    valid = torch.ones_like(yy, dtype=torch.bool)
    out = refine(problem, yy, valid, valid.flatten(1).sum(1), first, SearchConfig(**{**config.__dict__, "refine_steps": 5}))
    assert torch.equal(out.images[1], first.images[1]) and not torch.equal(out.images[0], first.images[0])
