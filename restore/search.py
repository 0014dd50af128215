"""Latent search: PULSE's spherical search generalised to any prior, forward model and likelihood.

Minimise over latents ``w``:  ``NLL(y | A(denormalise(G(w)))) / n  +  penalties(w)``.

- Parametrisations ``z``, ``w`` and ``w+``; ``w``/``w+`` live in PULSE's Gaussianised space (the
  mapping's last leaky ReLU undone, standardised by the prior's stored fit). Every latent row (and
  every optimised noise map) is projected back onto its sphere after each step: radius ``sqrt(d)``
  for normal latents, ``sqrt(d/3)`` for uniform ones.
- The data term is the likelihood's NLL in the observation's physical units, divided by the number
  of observed values. Penalties are named and weighted (``geocross``, ``latent_norm``).
- All restarts (and all tiles) run as one batch. An item is data-consistent when its reduced
  chi-square is within ``chi2_range``; the search keeps the first consistent iterate of each item,
  stops when all are consistent (``early_stop``), and otherwise returns each item's iterate with the
  lowest objective, never simply the last.
- ``objective="pulse"`` reproduces PULSE: ``100 * max(L2, 2e-3) + 0.05 * GEOCROSS`` with L2 the mean
  squared error in the prior's normalised space mapped to [0, 1]; like PULSE it returns the last
  iterate, flagged consistent only if L2 reached ``eps``.

Example:
    >>> import torch
    >>> from restore.priors import Prior, StyleGAN2Generator
    >>> from restore.degradations import Downsample, GaussianNoise
    >>> g = StyleGAN2Generator(8, 16, 1, {4: 8, 8: 8}); prior = Prior(g, {"resolution": 8, "channels": 3, "latent_dim": 16})
    >>> problem = Problem(prior, Downsample(2, "mean"), GaussianNoise(0.1))
    >>> res = latent_search(problem, torch.zeros(1, 3, 4, 4), SearchConfig(steps=3, restarts=2, refine_steps=0, progress=False))
    >>> res.images.shape, res.chi2.shape
    (torch.Size([2, 3, 8, 8]), torch.Size([2]))
"""

from __future__ import annotations

import math
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field, replace

import torch

from .degradations.base import LinearOperator
from .degradations.noise import Likelihood, valid_mask
from .priors.base import Prior
from .progress import progress
from .spec.search import LatentSpace, Objective, Schedule, SearchSpec

PULSE_EPS = 2e-3
PULSE_NOISE_LAYERS = 5


@dataclass(frozen=True)
class SearchConfig:
    """Resolved search settings; the defaults are the ``default`` preset (see :data:`restore.spec.PRESETS`)."""

    latent: LatentSpace = "w+"
    restarts: int = 4
    steps: int = 300
    lr: float = 0.3
    schedule: Schedule = "linear1cycledrop"
    objective: Objective = "nll"
    geocross: float = 0.01
    latent_norm: float = 0.0
    noise_maps: bool = False
    early_stop: bool = True
    refine_steps: int = 100
    refine_radius: float = 0.1
    chi2_range: tuple[float, float] = (0.8, 1.2)
    progress: bool = True


def config_from_spec(spec: SearchSpec, progress: bool = True) -> SearchConfig:
    """The settings a :class:`~restore.spec.SearchSpec` asks for: its preset, its explicit keys on top."""
    return SearchConfig(**spec.resolved(), progress=progress)


def fit_to_prior(config: SearchConfig, prior: Prior) -> SearchConfig:
    """The settings with the latent space replaced by one the prior offers (``z`` for a plain generator,
    whose ``w``/``w+`` do not exist), warned; GEOCROSS, which compares ``w+`` rows, is then off.

    Example:
        >>> from restore.priors.dcgan import DCGANGenerator
        >>> plain = Prior(DCGANGenerator(16, 16, 8), {"name": "toy", "resolution": 16, "channels": 3, "latent_dim": 16})
        >>> import warnings
        >>> with warnings.catch_warnings():
        ...     warnings.simplefilter("ignore")
        ...     fit_to_prior(SearchConfig(latent="w+"), plain).latent
        'z'
    """
    if config.latent in prior.latent_spaces:
        return config
    space = prior.latent_spaces[-1]
    warnings.warn(f"prior {prior.name!r} offers latent spaces {prior.latent_spaces}, not {config.latent!r}: "
                  f"searching {space!r}", stacklevel=2)
    return replace(config, latent=space, geocross=0.0 if space != "w+" else config.geocross)


def lr_schedule(name: str, steps: int) -> Callable[[int], float]:
    """Learning-rate multiplier per step: PULSE's ``linear1cycledrop`` and ``linear1cycle``, ``cosine``, ``fixed``."""
    if name == "linear1cycledrop":
        peak = 0.9 * steps
        return lambda t: (9 * (1 - abs(t / peak - 0.5) * 2) + 1) / 10 if t < peak else 0.1 + (t - peak) / (0.1 * steps) * (1e-3 - 0.1)
    if name == "linear1cycle":
        return lambda t: (9 * (1 - abs(t / steps - 0.5) * 2) + 1) / 10
    if name == "cosine":
        return lambda t: 0.5 * (1 + math.cos(math.pi * t / steps))
    if name == "fixed":
        return lambda t: 1.0
    raise ValueError(f"unknown schedule {name!r}")


def project_to_sphere(x: torch.Tensor, radius: float, dims: int = 1) -> torch.Tensor:
    """Rescale each row (the last ``dims`` dimensions) of ``x`` to norm ``radius``, in place; returns ``x``."""
    reduce = tuple(range(x.ndim - dims, x.ndim))
    norm = x.pow(2).sum(reduce, keepdim=True).add(1e-12).sqrt()
    return x.mul_(radius / norm)


def geocross(latent: torch.Tensor) -> torch.Tensor:
    """PULSE's GEOCROSS per item ``(B,)``: mean squared pairwise geodesic angle between the style rows
    of ``latent`` ``(B, L, D)``, times ``D / 8`` (PULSE's scale). Zero for a tiled latent."""
    if latent.ndim != 3 or latent.shape[1] == 1:
        return latent.new_zeros(latent.shape[0])
    x, y = latent[:, None], latent[:, :, None]
    a = ((x - y).pow(2).sum(-1) + 1e-9).sqrt()
    b = ((x + y).pow(2).sum(-1) + 1e-9).sqrt()
    angle = 2 * torch.atan2(a, b)
    return (angle.pow(2) * latent.shape[-1]).mean((1, 2)) / 8.0


def pulse_loss(y_norm: torch.Tensor, mu_norm: torch.Tensor, valid: torch.Tensor, latent: torch.Tensor | None,
               eps: float = PULSE_EPS, geocross_weight: float = 0.05) -> tuple[torch.Tensor, torch.Tensor]:
    """PULSE's objective per item and its L2 term: ``100 * max(L2, eps) + w * GEOCROSS``.

    ``L2`` is the mean squared difference over valid pixels of the degraded image and the
    observation, both in the prior's range mapped to [0, 1] (``(v + 1) / 2``).
    """
    diff = torch.where(valid, (mu_norm - y_norm) / 2, 0)
    l2 = diff.pow(2).flatten(1).sum(1) / valid.flatten(1).sum(1).clamp_min(1)
    loss = 100 * l2.clamp_min(eps)
    if latent is not None and geocross_weight:
        loss = loss + geocross_weight * geocross(latent)
    return loss, l2


@dataclass
class Problem:
    """An inverse problem in physical units: prior, forward model, likelihood and the (de)normalisation."""

    prior: Prior
    forward: LinearOperator
    likelihood: Likelihood
    denormalise: Callable[[torch.Tensor], torch.Tensor] = field(default=lambda x: x)
    normalise: Callable[[torch.Tensor], torch.Tensor] = field(default=lambda x: x)

    def observe(self, image_norm: torch.Tensor) -> torch.Tensor:
        """Noiseless observation ``A(denormalise(x))`` of prior images, in physical units."""
        return self.forward(self.denormalise(image_norm))


@dataclass
class SearchResult:
    """Per item (``B * restarts`` rows, restarts of one observation adjacent): the returned image in the
    prior's range, its reduced chi-square, consistency flag, the step it came from, the first stage's
    objective at that step (the second stage, ``refine``, compares the data term alone), and timings.
    ``history`` is the objective per step and item ``(steps_run, B * restarts)``."""

    images: torch.Tensor
    chi2: torch.Tensor
    consistent: torch.Tensor
    steps: torch.Tensor
    objective: torch.Tensor
    steps_run: int
    runtime_s: float
    history: torch.Tensor = field(default_factory=lambda: torch.empty(0))


class _Best:
    """The iterate each item returns: its first data-consistent one, else the one with the lowest objective."""

    def __init__(self, images: torch.Tensor, chi2: torch.Tensor, objective: torch.Tensor, chi2_range: tuple[float, float]):
        self.images, self.chi2, self.objective = images, chi2, objective
        self.step = torch.zeros(len(images), dtype=torch.long, device=images.device)
        # items frozen at their first consistent iterate
        self.landed = torch.zeros(len(images), dtype=torch.bool, device=images.device)
        self.lo, self.hi = chi2_range

    @torch.no_grad()
    def update(self, images: torch.Tensor, chi2: torch.Tensor, objective: torch.Tensor, step: int) -> None:
        landed = (chi2 >= self.lo) & (chi2 <= self.hi) & ~self.landed
        take = landed | ((objective < self.objective) & ~self.landed)
        self.images[take] = images.detach()[take]
        self.chi2[take], self.objective[take], self.step[take] = chi2[take], objective.detach()[take], step
        self.landed |= landed

    def consistent(self) -> torch.Tensor:
        return (self.chi2 >= self.lo) & (self.chi2 <= self.hi)


class Latents:
    """The optimised variables of a parametrisation, their sphere projection, and rendering."""

    def __init__(self, prior: Prior, config: SearchConfig, n: int, gen: torch.Generator, device: torch.device) -> None:
        self.prior, self.space = prior, config.latent
        if self.space not in prior.latent_spaces:
            raise ValueError(f"prior {prior.name!r} offers latent spaces {prior.latent_spaces}, not {self.space!r}")
        d = prior.latent_dim
        if self.space == "z":
            self.radius = prior.latent_radius()
            init = prior.sample_latent(n, gen)
        else:
            self.radius = math.sqrt(d)
            rows = prior.num_styles if self.space == "w+" else 1
            init = torch.randn(n, rows, d, generator=gen)
        # drawn on the CPU whatever the device, so a seed gives the same start everywhere
        self.latent = project_to_sphere(init.to(device), self.radius).requires_grad_(True)
        self.noise: list[torch.Tensor] = []
        self.noise_radii: list[float] = []
        fixed = prior.noise_maps()
        if config.noise_maps and fixed:
            for i, nm in enumerate(fixed):
                trainable = i < PULSE_NOISE_LAYERS
                t = torch.randn((n, *nm.shape[1:]), generator=gen).to(device) if trainable else nm.expand(n, -1, -1, -1)
                self.noise.append(t.clone().requires_grad_(trainable))
            self.noise_radii = [math.sqrt(t[0].numel()) for t in self.noise]
            for t, r in zip(self.noise, self.noise_radii):
                if t.requires_grad:
                    project_to_sphere(t.data, r, dims=3)

    def parameters(self) -> list[torch.Tensor]:
        return [self.latent] + [t for t in self.noise if t.requires_grad]

    @torch.no_grad()
    def project(self) -> None:
        project_to_sphere(self.latent, self.radius)
        for t, r in zip(self.noise, self.noise_radii):
            if t.requires_grad:
                project_to_sphere(t, r, dims=3)

    def styles(self) -> torch.Tensor:
        """The latent the generator sees: ``z``, or ``w``/``w+`` mapped out of the Gaussianised space."""
        if self.space == "z":
            return self.latent
        w = self.prior.ungaussianise(self.latent)
        return w[:, 0] if self.space == "w" else w

    def render(self) -> torch.Tensor:
        return self.prior.generate(self.styles(), self.space, self.noise or None)

    def penalty_latent(self) -> torch.Tensor | None:
        return self.latent if self.space == "w+" else None


def _objective(problem: Problem, config: SearchConfig, latents: Latents, y: torch.Tensor, valid: torch.Tensor,
               n_valid: torch.Tensor, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Objective per item, reduced chi-square per item, and the PULSE L2 (or NaN)."""
    mu = problem.observe(images)
    with torch.no_grad():
        chi2 = problem.likelihood.reduced_chi2(y, mu, valid)
    if config.objective == "pulse":
        mean = problem.likelihood.mean(mu)
        loss, l2 = pulse_loss(problem.normalise(y.nan_to_num()), problem.normalise(mean), valid,
                              latents.penalty_latent(), geocross_weight=config.geocross)
        return loss, chi2, l2.detach()
    loss = problem.likelihood.nll(y, mu, valid) / n_valid
    wplus = latents.penalty_latent()
    if config.geocross and wplus is not None:
        loss = loss + config.geocross * geocross(wplus)
    if config.latent_norm:
        loss = loss + config.latent_norm * latents.latent.pow(2).flatten(1).mean(1)
    return loss, chi2, torch.full_like(chi2, float("nan"))


def latent_search(
    problem: Problem,
    y: torch.Tensor,
    config: SearchConfig,
    mask: torch.Tensor | None = None,
    seed: int = 0,
) -> SearchResult:
    """Search the prior for images whose degraded version explains ``y`` ``(B, C, h, w)``.

    Returns ``B * config.restarts`` results, the restarts of observation ``b`` at rows
    ``b * restarts ... (b + 1) * restarts - 1``. The search runs on ``y``'s device, where the
    problem's prior, forward model and likelihood must be too; a seed gives the same start on any device.
    """
    start = time.perf_counter()
    gen = torch.Generator().manual_seed(seed)
    k = config.restarts
    y = y.repeat_interleave(k, 0)
    valid = valid_mask(y, None if mask is None else mask.repeat_interleave(k, 0))
    n_valid = valid.flatten(1).sum(1).clamp_min(1)
    n = y.shape[0]
    latents = Latents(problem.prior, config, n, gen, y.device)
    optimizer = torch.optim.Adam(latents.parameters(), lr=config.lr)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_schedule(config.schedule, config.steps))
    size = problem.prior.resolution
    best = _Best(y.new_zeros(n, problem.prior.channels, size, size), y.new_full((n,), float("nan")),
                 y.new_full((n,), float("inf")), config.chi2_range)
    reached_eps = torch.zeros(n, dtype=torch.bool, device=y.device)
    history: list[torch.Tensor] = []
    bar = progress(range(config.steps), "search", config.progress, leave=False, mininterval=0.5)
    steps_run = 0
    for step in bar:
        images = latents.render()
        loss, chi2, l2 = _objective(problem, config, latents, y, valid, n_valid, images)
        with torch.no_grad():
            obj = loss.detach()
            if config.objective == "pulse":  # PULSE returns the last iterate
                reached_eps |= l2 <= PULSE_EPS
                best.images, best.chi2, best.objective = images.detach().clone(), chi2.clone(), obj.clone()
                best.step[:] = step
            else:
                best.update(images, chi2, obj, step)
            history.append(obj.clone())
        steps_run = step + 1
        if config.early_stop and config.objective != "pulse" and bool(best.landed.all()):
            break
        optimizer.zero_grad(set_to_none=True)
        loss.sum().backward()
        optimizer.step()
        scheduler.step()
        latents.project()
        if config.progress:
            bar.set_postfix(chi2=f"{float(chi2.median()):.3g}", consistent=f"{int(best.landed.sum())}/{n}")
    bar.close()
    consistent = reached_eps if config.objective == "pulse" else best.consistent()
    result = SearchResult(best.images, best.chi2, consistent, best.step, best.objective, steps_run, 0.0,
                          torch.stack(history))
    if config.refine_steps > 0 and config.objective != "pulse":
        result = refine(problem, y, valid, n_valid, result, config)
    result.runtime_s = time.perf_counter() - start
    return result


def refine(problem: Problem, y: torch.Tensor, valid: torch.Tensor, n_valid: torch.Tensor, result: SearchResult,
           config: SearchConfig) -> SearchResult:
    """Second stage: reduce the prior's representation error with a bounded image-space correction.

    The returned image ``x`` is refined as ``x + delta`` with ``delta`` kept in an L2 ball of radius
    ``refine_radius * ||x||`` (ILO's idea of a bounded step off the generator's range, taken in the
    last layer). Items that are already consistent are left alone; the best-iterate rule applies.
    """
    todo = ~result.consistent
    if not bool(todo.any()):
        return result
    # the whole batch goes through (the problem's normalisation may be per item); consistent items stay frozen
    base, keep = result.images, todo.reshape(-1, 1, 1, 1)
    delta = torch.zeros_like(base, requires_grad=True)
    optimizer = torch.optim.Adam([delta], lr=0.01)
    radius = config.refine_radius * base.flatten(1).norm(dim=1).reshape(-1, 1, 1, 1)
    with torch.no_grad():  # this stage compares the data term alone, starting from stage one's image
        start = problem.likelihood.nll(y, problem.observe(base), valid) / n_valid
    best = _Best(base.clone(), result.chi2.clone(), start, config.chi2_range)
    best.landed |= ~todo
    for _ in range(config.refine_steps):
        images = base + delta * keep
        mu = problem.observe(images)
        loss = problem.likelihood.nll(y, mu, valid) / n_valid
        with torch.no_grad():
            best.update(images, problem.likelihood.reduced_chi2(y, mu, valid), loss, step=0)  # steps keep stage one's
        if bool(best.landed.all()):
            break
        optimizer.zero_grad(set_to_none=True)
        loss.sum().backward()
        optimizer.step()
        with torch.no_grad():
            norm = delta.flatten(1).norm(dim=1).reshape(-1, 1, 1, 1).clamp_min(1e-12)
            delta.mul_(torch.clamp(radius / norm, max=1.0))
    out = replace(result, images=best.images, chi2=best.chi2)
    lo, hi = config.chi2_range
    out.consistent = (out.chi2 >= lo) & (out.chi2 <= hi)
    return out
