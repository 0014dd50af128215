"""The band engine: everything done to one observation between normalising it and writing it.

:class:`Engine` is built once per observation from the pipeline's :class:`Parts`. It cuts the frame
into :class:`Job` s (overlapping tiles, or the adapter's detected objects), searches the prior
``search.tile_batch`` jobs at a time in order of their rows, decides per job whether the prior
explains the data (:func:`prior_test`), accumulates the *anchor* on the sharp grid band by band
(where accepted, the prior's restoration for its share ``consistency.prior_weight`` and a plain
upsampling for the rest; the plain upsampling elsewhere), then fits the frame-wide
correction (:mod:`restore.correction`) band by band and measures the chi map of the image written.

Example:
    >>> import restore, pathlib
    >>> pipe = restore.Pipeline.from_yaml(pathlib.Path(restore.__file__).parents[1] / "recipes" / "satellite.yaml",
    ...                                   overrides=["search.steps=2", "search.restarts=2", "search.refine_steps=0"],
    ...                                   progress=False)
    >>> out = Engine(pipe.parts, pipe.read(None)).restore(lambda shape: __import__("numpy").empty(shape, "float32"))
    >>> out.image.shape, len(out.stats.regions) > 0
    ((3, 64, 64), True)
"""

from __future__ import annotations

import math
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from itertools import islice
from typing import Any, NamedTuple

import numpy as np
import torch
from kornia.filters import gaussian_blur2d
from scipy import stats as scipy_stats
from torch.nn import functional as F

from .chimap import ChiMap
from .correction import correct, level_zones, plan_bands, stretch_stiffness
from .degradations import LinearOperator, Warp, build_likelihood, resolve_noise
from .degradations.noise import Likelihood, valid_mask
from .domains import DomainAdapter, Normalisation, Observation
from .errors import RestoreError, about
from .geometry import Framing, is_whole_pixel_shift, placed_corners, placement, region, shifted
from .priors.base import Prior
from .rasters import Raster, read_rows, write_rows
from .search import Problem, SearchConfig, latent_search
from .spec import PipelineSpec
from .tiling import Blender, Paster, Tile, cosine_window, crop, tile_origins

Store = Callable[[tuple[int, ...]], Raster]
"""Makes a raster of a shape: an array in memory, or a scratch file (``Pipeline.run_to``)."""


@dataclass(frozen=True)
class Parts:
    """What a pipeline builds once and every observation uses."""

    spec: PipelineSpec
    adapter: DomainAdapter
    forward: LinearOperator
    prior: Prior
    config: SearchConfig
    device: torch.device
    reach: int  # the forward model's (LinearOperator.reach), measured once


@dataclass(frozen=True)
class Job:
    """One search: plane group ``group`` of the observed window ``y``/``mask`` ``(C, h, w)``; ``where`` it
    lands on the sharp grid (a :class:`Tile`, or a placement matrix for cutouts); ``warp`` the cutout's
    placement on the window's sharp grid when it is resampled (``None``: a plain crop); ``top`` the first
    sharp row it touches; ``box`` its observed-grid ``(top, left, height, width)``; ``region`` its tile or
    object index; ``level`` a local background (observed units, above the likelihood's) taken out of ``y``
    for the search and put back into its restoration; ``weight`` ``(R, R)`` a resampled cutout's paste
    weight: its window times the part of each restored pixel's signal that lands on pixels the search fits
    (``None``: the window alone)."""

    group: int
    y: torch.Tensor
    mask: torch.Tensor
    where: Tile | torch.Tensor
    top: int
    box: tuple[int, int, int, int]
    region: int
    warp: torch.Tensor | None = None
    level: float = 0.0
    weight: torch.Tensor | None = None


class PointFit(NamedTuple):
    """A point-source fit in a window: weighted sums of squares of the fit (``chi2``) and about the
    weighted mean level (``null``) over ``n`` core pixels, ``coef`` (flux, level), the unit point on the
    window's sharp grid ``delta`` ``(1, 1, R, R)``, its observation ``template`` ``(1, h, w)``, its centre on
    the sharp and the observed grid, and the core's radius ``aperture`` (observed pixels)."""

    chi2: float
    null: float
    n: int
    coef: torch.Tensor
    delta: torch.Tensor
    template: torch.Tensor
    sharp: tuple[float, float]
    observed: tuple[float, float]
    aperture: float


@dataclass
class Band:
    """Finished sharp rows ``[top, top + n)``: anchor mean, spread, the plain upsampling's part of each pixel
    (0..1) ``(C, n, W)``, restarts ``(K, C, n, W)``, and the part made by fitted point sources (``None``: none)."""

    top: int
    mean: torch.Tensor
    std: torch.Tensor
    plain: torch.Tensor
    samples: torch.Tensor | None
    points: torch.Tensor | None = None


@dataclass
class Stats:
    """What the engine measured: search steps and time, consistent restarts, per-region reports, the
    correction's weights and time."""

    steps: int = 0
    runtime_s: float = 0.0
    restarts_consistent: int = 0
    regions: list[dict[str, Any]] = field(default_factory=list)
    correction: dict[str, Any] = field(default_factory=dict)
    planes_fitted_as: str = "prior channels"  # or "prior channel mean": fewer planes than the prior draws
    prior_weight: dict[str, Any] = field(default_factory=dict)  # its value and where it came from


@dataclass
class Outcome:
    """The engine's result: rasters of the image written and its spread (and restarts), the chi map, the
    whole-frame and restored-region reduced chi-squares, and the statistics."""

    image: Raster
    std: Raster
    samples: np.ndarray | None
    chi_map: np.ndarray
    chi2: float
    chi2_restored: float | None
    stats: Stats
    noise: dict[str, float]
    normalisation: dict[str, Any]


POINT_SIZES = (0.0, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0)
"""Sizes (Gaussian sigma, sharp pixels; 0: a delta) tried for a fitted point source's restoration."""

POINT_EXPLAINED = 0.995
"""A source is a point when the point model explains this fraction of its signal (weighted sum of squares
about the local level) in the PSF's core, or passes the chi-square test."""


def observation_likelihood(spec: PipelineSpec, obs: Observation,
                           device: torch.device | str = "cpu") -> tuple[dict[str, float], Likelihood]:
    """The recipe's noise values for ``obs`` (``from_header`` / ``estimate`` resolved) and its likelihood."""
    with about(obs.source):
        values = resolve_noise(spec.noise, obs.noise, torch.from_numpy(obs.data), torch.from_numpy(obs.mask))
    return values, build_likelihood(spec.noise, values).to(device)


UNCALIBRATED = "card has none: the prior restoration"
"""Where :func:`resolve_prior_weight` took the weight 1 from: a card without a calibrated ``prior_weight``."""


def resolve_prior_weight(setting: float | str, card: dict[str, Any], factor: int) -> tuple[float, str]:
    """The share of the prior's restoration in the image written (``consistency.prior_weight``) and where it
    came from: the recipe's number, or (``"card"``) the card's calibrated weight for the nearest factor, 1 when
    the card has none.

    Example:
        >>> resolve_prior_weight("card", {"prior_weight": {"4": 0.3, "8": 0.2}}, 5)
        (0.3, 'card, calibrated at 4x')
        >>> resolve_prior_weight(0.5, {}, 4), resolve_prior_weight("card", {}, 4)
        ((0.5, 'recipe'), (1.0, 'card has none: the prior restoration'))
    """
    if setting != "card":
        return float(setting), "recipe"
    table = card.get("prior_weight") or {}
    if not table:
        return 1.0, UNCALIBRATED
    key = min(table, key=lambda k: (abs(math.log(int(k) / factor)), int(k)))  # nearest in log
    return float(table[key]), f"card, calibrated at {key}x"


def prior_test(chi2: float, n: int, alpha: float, band_high: float) -> dict[str, Any]:
    """Does the prior explain the data? A chi-square goodness-of-fit test of its best restart: reduced
    chi-square ``chi2`` over ``n`` observed values (``n`` degrees of freedom), rejected when its p-value is
    below ``alpha`` and it lies above the consistency band's upper end ``band_high``.

    Example:
        >>> prior_test(1.05, 256, 1e-3, 1.2)["prior_used"], prior_test(5e4, 256, 1e-3, 1.2)["prior_used"]
        (True, False)
    """
    p = float(scipy_stats.chi2.sf(chi2 * n, n)) if n else 1.0
    return {"test": "chi2_gof", "statistic": round(float(chi2), 4), "dof": int(n), "p_value": p,
            "alpha": alpha, "prior_used": bool(p >= alpha or chi2 <= band_high)}


class Engine:
    """Restore one observation (see the module): ``Engine(parts, obs).restore(store)`` -> :class:`Outcome`."""

    def __init__(self, parts: Parts, obs: Observation) -> None:
        self.parts, self.obs = parts, obs
        spec, prior = parts.spec, parts.prior
        self.factor = parts.forward.scale()
        if prior.resolution % self.factor:
            raise RestoreError(f"prior {prior.name!r} ({prior.resolution} px) is not divisible by the factor "
                               f"{self.factor}")
        self.y = torch.from_numpy(np.nan_to_num(obs.data)).float()
        self.mask = torch.from_numpy(obs.mask.copy()).expand_as(self.y)
        self.noise, self.likelihood = observation_likelihood(spec, obs, parts.device)
        self.gain = parts.forward.flat_gain()
        self.reach = parts.reach
        self.norm: Normalisation = parts.adapter.normalisation(obs, gain=self.gain)
        self.points: dict[int, tuple[torch.Tensor, dict[str, Any]]] = {}  # fitted point sources, by region
        self.grey = obs.data.shape[0] < prior.channels  # fewer planes than the prior draws: see _plane_groups
        self.weight, weight_from = resolve_prior_weight(spec.consistency.prior_weight, prior.card, self.factor)
        self.stats = Stats(planes_fitted_as="prior channel mean" if self.grey else "prior channels",
                           prior_weight={"value": self.weight, "from": weight_from})
        self.groups, self.rest = self._plane_groups()
        c, h, w = obs.data.shape
        self.shape = (c, h * self.factor, w * self.factor)

    def _plane_groups(self) -> tuple[list[list[int]], list[int]]:
        """Planes restored together (``prior.channels`` at a time) and planes passed through. An observation
        with fewer planes than the prior draws (a grey photo, a single band, through a colour prior) has each
        plane fitted by the mean of the prior's channels (``self.grey``): the colour it does not observe is
        the prior's guess and is not written."""
        prior, obs = self.parts.prior, self.obs
        c, k = obs.data.shape[0], prior.channels
        if self.grey:
            return [[p] for p in range(c)], []
        groups = [list(range(i, i + k)) for i in range(0, c - c % k, k)]
        rest = list(range(len(groups) * k, c))
        if rest:
            warnings.warn(f"{obs.source}: planes {rest} do not fit prior {prior.name!r} ({k} channels); they get "
                          "the classical restoration, with no spread", stacklevel=4)
        return groups, rest

    # ------------------------------------------------------------------ the whole observation
    def restore(self, store: Store, keep_samples: bool = False) -> Outcome:
        """Anchor band by band, then the correction band by band, then the chi map of what is written."""
        k = self.parts.config.restarts
        anchor, spread, plain = (store(self.shape) for _ in range(3))
        layout = self.parts.spec.layout
        points = store(self.shape) if getattr(layout, "points", False) else None  # only where points are fitted
        samples = np.empty((k, *self.shape), np.float32) if keep_samples else None
        for band in self.bands(keep_samples):
            write_rows(anchor, band.top, band.mean.numpy())
            write_rows(spread, band.top, band.std.numpy())
            write_rows(plain, band.top, band.plain.numpy())
            if points is not None:
                write_rows(points, band.top, band.points.numpy())
            if samples is not None and band.samples is not None:
                write_rows(samples, band.top, band.samples.numpy())
        image = self._corrected((anchor, plain, points), store, samples)
        return self._measured(image, spread, samples)

    def _corrected(self, anchor: tuple[Raster, Raster, Raster | None], store: Store,
                   samples: np.ndarray | None) -> Raster:
        """``anchor + r`` band by band from the anchor, its plain part and its points (or the anchor itself when
        ``consistency.correct`` is off); restarts get the same correction, so the spread is the prior's."""
        spec, forward, f = self.parts.spec.consistency, self.parts.forward, self.factor
        anchor, plain, points = anchor
        if not spec.correct:
            return anchor
        start, image, lams, dofs, level = time.perf_counter(), store(self.shape), [], [], None
        device, zones = self.parts.device, self._zones()
        for plan in plan_bands(self.obs.data.shape[1], f, self.reach, spec.band):
            rows = torch.from_numpy(read_rows(anchor, plan.lo, plan.hi - plan.lo))[None].to(device)
            part = torch.from_numpy(read_rows(plain, plan.lo, plan.hi - plan.lo))[None].to(device)
            held = part * self.plain(plan.lo, plan.hi - plan.lo)[None].to(device)  # the classical share's image
            keep = None
            if points is not None:
                keep = torch.from_numpy(read_rows(points, plan.lo, plan.hi - plan.lo))[None].to(device) > 0.5
            ys = slice(plan.lo // f, plan.hi // f)
            count = self.mask[:, ys].clone()
            count[:, : plan.count_lo - plan.lo // f] = False
            count[:, plan.count_hi - plan.lo // f :] = False
            fit = correct(forward, self.likelihood, self.y[None, :, ys].to(device), count[None].to(device), rows,
                          part, spec.target, spec.iterations, accept=self.parts.config.chi2_range,
                          rounds=spec.rounds, protect=keep, rule=spec.rule, held=held,
                          zones=zones[..., ys, :].to(device), stiffness=stretch_stiffness(self.norm.forward, rows),
                          start=level)
            level = fit.level if math.isfinite(fit.level) else level  # the next band's walk starts near it
            lams.append(fit.lam)
            dofs.append(fit.dof)
            kept = slice(plan.first * f - plan.lo, plan.end * f - plan.lo)
            r = fit.r[0, :, kept].cpu()
            write_rows(image, plan.first * f, (rows[0, :, kept].cpu() + r).numpy())
            if samples is not None:
                samples[:, :, plan.first * f : plan.end * f] += r.numpy()[None]
        finite = [v for v in lams if np.isfinite(v)]
        self.stats.correction = {"bands": len(lams), "bands_corrected": len(finite), "rule": spec.rule,
                                 "lam": [float(v) for v in finite],
                                 "dof": [round(float(d), 4) for d, v in zip(dofs, lams) if np.isfinite(v)],
                                 "runtime_s": round(time.perf_counter() - start, 3)}
        return image

    def _zones(self) -> torch.Tensor:
        """Labels ``(1, 1, h, w)`` of the observed frame, the zones of the correction's weight: the background
        and each region (:func:`region_zones`), each split by signal level (:func:`level_zones`)."""
        zones = region_zones([reg["box"] for reg in self.stats.regions], self.y.shape[-2:])
        device = self.parts.device
        return level_zones(zones.to(device), self.y.to(device), self.mask.to(device), self.likelihood,
                           self.parts.spec.consistency.levels).cpu()

    def _measured(self, image: Raster, spread: Raster, samples: np.ndarray | None) -> Outcome:
        """The chi map of ``image`` and the reduced chi-squares: whole frame, restored regions, each region."""
        f = self.factor
        chi = ChiMap(self.parts.forward, self.likelihood, self.y, self.mask, reach=self.reach)
        for top in range(0, self.shape[1], 64 * f):
            chi.add(top, torch.from_numpy(read_rows(image, top, 64 * f)))
        chi_map, chi2 = chi.result()
        sq = (chi_map**2).numpy()
        covered = np.zeros(sq.shape, bool)
        for reg in self.stats.regions:
            reg["chi2"] = _mean_finite(sq[_box(reg)])
            if reg["prior_used"]:
                covered[_box(reg)] = True
        if self.parts.spec.layout.kind == "objects":
            background = sq[~_object_cover(self.stats.regions, sq.shape)]
            self.stats.correction["chi2_background"] = _mean_finite(background)
        chi2_restored = _mean_finite(sq[covered]) if covered.any() else None
        return Outcome(image, spread, samples, chi_map.numpy(), chi2, chi2_restored, self.stats, self.noise,
                       self.norm.describe())

    # ------------------------------------------------------------------ the anchor, band by band
    def bands(self, keep_samples: bool = False) -> Iterator[Band]:
        """The anchor on the sharp grid in bands of finished rows, top to bottom."""
        objects = self.parts.spec.layout.kind == "objects"
        yield from (self._objects(keep_samples) if objects else self._tiles(keep_samples))

    def _accumulators(self, kind: type, keep_samples: bool, *args: Any) -> list:
        """Accumulators on the sharp grid of the accepted jobs' mean and variance, of every job's part (1 the
        prior's, 2 a fitted point's, 0 rejected), and of the accepted restarts."""
        k = self.parts.config.restarts
        shapes = [self.shape, self.shape, self.shape, *([(k, *self.shape)] if keep_samples else [])]
        return [kind(s, *args) for s in shapes]

    def _tiles(self, keep_samples: bool) -> Iterator[Band]:
        """Overlapping tiles; rejected tiles contribute the plain upsampling, blended like the others."""
        prior, f = self.parts.prior, self.factor
        tile, (_, h, w) = prior.resolution // f, self.obs.data.shape
        overlap = max(1, tile // 4)
        tiles = [Tile(top, left, min(tile, h - top), min(tile, w - left))
                 for top in tile_origins(h, tile, overlap) for left in tile_origins(w, tile, overlap)]
        jobs = [Job(g, *crop(self.y[planes], self.mask[planes], t.top, t.left, tile, tile), where=t, top=t.top * f,
                    box=(t.top, t.left, t.height, t.width), region=i)
                for i, t in enumerate(tiles) for g, planes in enumerate(self.groups)]
        blenders = self._accumulators(Blender, keep_samples, f, prior.resolution)
        for top, upto in self._in_row_order(jobs, blenders):
            (mean, _), (var, _), (used, _), *kept = (b.take(upto) for b in blenders)
            yield self._band(top, (mean, var, kept[0][0] if kept else None), used)

    def _objects(self, keep_samples: bool) -> Iterator[Band]:
        """Detected objects pasted over the plain upsampling; nothing detected: the plain upsampling alone."""
        prior, f, layout = self.parts.prior, self.factor, self.parts.spec.layout
        tile = prior.resolution // f
        cutouts = self.parts.adapter.detect(self.obs, f, tile, layout)  # type: ignore[arg-type]
        if not cutouts:
            warnings.warn(f"{self.obs.source}: no objects detected; the classical restoration stands alone",
                          stacklevel=4)
        self.stats.regions = [{"kind": "object", "x": round(c.x, 2), "y": round(c.y, 2),
                               "size": c.size and round(c.size, 2), "score": round(c.score, 3)} for c in cutouts]
        window = cosine_window(prior.resolution, layout.feather)  # a cutout's paste weight
        jobs = sorted(self._cutout_jobs(cutouts, window), key=lambda j: j.top)
        fits = {j.region: self._point_fit(j) for j in jobs if layout.points and j.warp is None}
        self.points = {region: fit for region, fit in fits.items() if fit is not None}
        pasters = self._accumulators(Paster, keep_samples, window)
        for top, upto in self._in_row_order(jobs, pasters):
            (mean, coverage), (var, _), (model, _), *kept = (p.take(upto) for p in pasters)
            points = torch.nan_to_num(model - 1, nan=0.0).clamp(0, 1) * coverage.clamp(max=1.0)
            yield self._band(top, (mean, var, kept[0][0] if kept else None), coverage.clamp(max=1.0), points)

    def _band(self, top: int, anchor: tuple[torch.Tensor, torch.Tensor, torch.Tensor | None],
              prior_part: torch.Tensor, points: torch.Tensor | None = None) -> Band:
        """A finished band from the prior's ``(mean, variance, restarts)``, the part of each pixel they make
        (0..1) and the part of it made by fitted point sources (``points``). The prior's own part keeps its
        share ``self.weight`` (``consistency.prior_weight``), a fitted point all of its part; the rest is the
        plain upsampling, which the correction makes the classical solution. Where the prior makes less than
        half a pixel (or in planes passed through) there is no spread (NaN: not a prior spread); elsewhere it
        is the restarts' own spread, not scaled by the share: what the data leave open is no smaller for a
        shrunk estimate of it (the restarts written, blended like the image, spread ``weight`` times less)."""
        mean, var, samples = anchor
        plain = self.plain(top, mean.shape[-2])
        part = torch.nan_to_num(prior_part.expand_as(mean), nan=0.0).clamp(0, 1).clone()
        if self.rest:
            part[self.rest] = 0.0
        point = torch.zeros_like(part) if points is None else points.expand_as(part).clamp(max=part)
        share = point + self.weight * (part - point)
        mean = share * torch.nan_to_num(mean) + (1 - share) * plain
        std = var.clamp_min(0).sqrt().masked_fill(part < 0.5, float("nan"))  # NaN var: a point source's
        if samples is not None:
            samples = share * torch.nan_to_num(samples) + (1 - share) * plain
        return Band(top, mean, std, 1 - share, samples, points)

    def _in_row_order(self, jobs: list[Job], accumulators: list) -> Iterator[tuple[int, int]]:
        """Search ``jobs`` (sorted by their top rows), add each into ``accumulators`` and yield ``(top, upto)``
        whenever rows ``[top, upto)`` are finished, no later job reaching them."""
        height = self.shape[1]
        for i, (job, samples, test) in enumerate(self._results(jobs)):
            point, planes = test.get("model") == "point", self.groups[job.group]
            used = test["prior_used"] or point
            mean = samples[test["use"]].mean(0) if point or not used else restart_mean(samples[test["use"]],
                                                                                     self._observed_pixel(job))
            weight = test.get("weight")  # a point source is pasted over its aperture only
            part = 2.0 if point else float(used)  # 1: the prior's; 2: a fitted point's
            accumulators[2].add(job.where, torch.full_like(mean, part), planes, weight)
            if used:
                var = samples[test["use"]].var(0, unbiased=False)
                if point:
                    var = torch.full_like(var, float("nan"))  # a fitted point: no prior spread
                for acc, value in zip(accumulators[:2] + accumulators[3:], (mean, var, samples)):
                    acc.add(job.where, value, planes, weight)
            upto = jobs[i + 1].top if i + 1 < len(jobs) else height
            if upto > accumulators[0].top:
                yield accumulators[0].top, upto
        if not jobs:
            yield 0, height

    def _results(self, jobs: list[Job]) -> Iterator[tuple[Job, torch.Tensor, dict[str, Any]]]:
        """Each job's restarts and test, in order: fitted point sources as they are, windows with nothing to
        restore (:meth:`_flat`) as the classical restoration, the rest searched (with a prior weight of 0,
        none: the classical solution alone, ``model: classical``)."""
        done = {id(job): self.points[job.region] for job in jobs if job.region in self.points}
        if self.weight == 0:
            test = {"test": "none", "statistic": math.nan, "dof": 0, "p_value": math.nan,
                    "alpha": self.parts.spec.consistency.alpha}
            done.update({id(job): self._unsearched(job, test, "classical") for job in jobs if id(job) not in done})
        done.update({id(job): flat for job in jobs if id(job) not in done and (flat := self._flat(job)) is not None})
        searched = self._searched([j for j in jobs if id(j) not in done])
        for job in jobs:
            if id(job) in done:
                samples, test = done[id(job)]
                self._report(job, test)
                yield job, samples, test
            else:
                yield next(searched)

    def _observed_pixel(self, job: Job) -> float:
        """An observed pixel's size in the prior's pixels of ``job``: the factor, over a resampled cutout's scale."""
        if job.warp is None:
            return float(self.factor)
        return self.factor / float(torch.linalg.det(job.warp[:2, :2].double()).abs().sqrt())

    def _flat(self, job: Job) -> tuple[torch.Tensor, dict[str, Any]] | None:
        """Is there anything to restore? A level per plane fitted to the window's observed values and tested
        like the prior (chi-square goodness of fit, a degree of freedom less per plane): when it explains the
        data, they show no structure the prior could restore, so none is invented: the search is skipped and
        the classical restoration stands (``model: flat``, ``prior_used: false``). ``None`` otherwise."""
        valid = valid_mask(job.y, job.mask)
        counts = valid.flatten(1).sum(1)
        n = int(counts.sum()) - job.y.shape[0]
        if n < 1 or bool((counts == 0).any()):
            return None
        y = torch.where(valid, job.y, 0.0).double()
        level = y.flatten(1).sum(1) / counts
        mu = (level[:, None, None] + job.level - self.likelihood.background).clamp_min(0).expand_as(y)
        var = self.likelihood.variance(mu[None].float()).double()[0]
        chi2 = float((torch.where(valid, (y - level[:, None, None]) ** 2 / var, 0.0)).sum()) / n
        test = prior_test(chi2, n, self.parts.spec.consistency.alpha, self.parts.config.chi2_range[1])
        if not test["prior_used"]:  # structure the level does not explain: the prior's turn
            return None
        return self._unsearched(job, test, "flat")

    def _unsearched(self, job: Job, test: dict[str, Any], model: str) -> tuple[torch.Tensor, dict[str, Any]]:
        """The result of a job not searched: no restarts (zeros, unused) and ``test`` as a classical one."""
        k, r = self.parts.config.restarts, self.parts.prior.resolution
        test = {**test, "prior_used": False, "model": model, "use": torch.ones(k, dtype=torch.bool)}
        return torch.zeros(k, job.y.shape[0], r, r), test

    def _point_fit(self, job: Job) -> tuple[torch.Tensor, dict[str, Any]] | None:
        """A point source near the cutout's centre, fitted by the forward model in the PSF's core: position
        (to 1/64 pixel), flux ``F`` and a local level by weighted least squares (4 parameters). When the
        chi-square test accepts it, or it explains :data:`POINT_EXPLAINED` of the core's signal, the
        restoration over the core is a source of flux ``F`` and the size that fits best (:meth:`_point_size`)
        over the plain upsampling less the source's own; ``None`` otherwise (the object goes to the prior)."""
        parts, f, r = self.parts, self.factor, self.parts.prior.resolution
        region = self.stats.regions[job.region]
        cx, cy = region["x"] - job.box[1], region["y"] - job.box[0]  # observed pixels within the window
        best = self._centred(job, (cx, cy), 0.0)
        if best is None:
            return None
        dof = max(best.n - 4, 1)
        explained = 1.0 - best.chi2 / max(best.null, 1e-30)
        flux = float(best.coef[0])
        test = prior_test(best.chi2 / dof, dof, self.parts.spec.consistency.alpha, parts.config.chi2_range[1])
        if flux <= 0 or not (test["prior_used"] or explained >= POINT_EXPLAINED):
            return None
        sized, size = self._point_size(job, best)
        if sized is None or float(sized.coef[0]) <= 0:
            return None
        flux = float(sized.coef[0])
        top, left = job.box[0] * f, job.box[1] * f
        with torch.no_grad():
            own = F.interpolate(sized.template[None].float(), scale_factor=f, mode="bicubic",
                                align_corners=False)[0] / self.gain
        # the plain window holds the local background already (the point model's level is not added twice)
        image = self._plain_window(top, left, r)[self.groups[job.group]] - flux * own + flux * sized.delta[0].cpu()
        sy, sx = torch.meshgrid(torch.arange(float(r)), torch.arange(float(r)), indexing="ij")
        cxs, cys = best.sharp
        dist = ((sx - cxs) ** 2 + (sy - cys) ** 2).sqrt() / f  # observed pixels from the fitted centre
        weight = (torch.sin(0.5 * math.pi * (best.aperture - dist).clamp(0, 1)) ** 2).float()
        test = {**test, "prior_used": False, "model": "point", "flux": round(flux, 4), "weight": weight,
                "size": round(size, 3),
                "explained": round(explained, 5),
                "use": torch.ones(self.parts.config.restarts, dtype=torch.bool)}
        return image[None].expand(self.parts.config.restarts, -1, -1, -1).clone(), test

    def _centred(self, job: Job, centre: tuple[float, float], sigma: float) -> PointFit | None:
        """The best fit of a round source of size ``sigma`` (:func:`_source`) near ``centre`` (observed pixels,
        window coordinates): on a 1/8-pixel grid, then a 1/64-pixel grid around the best; None when a centre
        leaves the window."""
        best: PointFit | None = None
        for step in (0.125, 0.125 / 8):
            found = self._point_grid(job, centre, step, sigma)
            if found is None:
                return None
            if best is None or found.chi2 < best.chi2:
                best = found
            centre = best.observed
        return best

    def _point_grid(self, job: Job, centre: tuple[float, float], step: float, sigma: float) -> PointFit | None:
        """The best fit of a source of size ``sigma`` on a 9 x 9 grid of centres ``step`` observed pixels apart
        around ``centre`` (window coordinates); None when a centre leaves the window."""
        f, r = self.factor, self.parts.prior.resolution
        offsets = [step * k for k in range(-4, 5)]
        observed = [(centre[0] + dx, centre[1] + dy) for dy in offsets for dx in offsets]
        centres = [((x + 0.5) * f - 0.5, (y + 0.5) * f - 0.5) for x, y in observed]
        if not all(0 <= sx < r - 1 and 0 <= sy < r - 1 for sx, sy in centres):
            return None
        sources = torch.cat([_source(r, c, sigma) for c in centres])
        return self._best_source(job, centre, sources, centres)

    def _point_size(self, job: Job, point: PointFit) -> tuple[PointFit | None, float]:
        """The fitted point as a round Gaussian source of the size (sigma, sharp pixels) and centre that fit its
        core best, and that size: the best of :data:`POINT_SIZES`, refined at the vertex of the parabola through
        its neighbours' chi-squares. A star keeps the blur of the instrument that took the scene, a compact
        galaxy its extent, instead of a delta."""
        fits = [self._centred(job, point.observed, s) if s else point for s in POINT_SIZES]
        chi2 = [math.inf if fit is None else fit.chi2 for fit in fits]
        i = min(range(len(fits)), key=chi2.__getitem__)
        best, size = fits[i], POINT_SIZES[i]
        if 0 < i < len(fits) - 1 and math.isfinite(chi2[i - 1] + chi2[i + 1]):
            (a, b, c), (fa, fb, fc) = POINT_SIZES[i - 1 : i + 2], chi2[i - 1 : i + 2]
            den = (b - a) * (fb - fc) - (b - c) * (fb - fa)
            vertex = b - 0.5 * ((b - a) ** 2 * (fb - fc) - (b - c) ** 2 * (fb - fa)) / den if den else b
            refined = self._centred(job, best.observed, vertex) if a < vertex < c else None  # type: ignore[union-attr]
            if refined is not None and refined.chi2 < chi2[i]:
                best, size = refined, vertex
        return best, size

    def _best_source(self, job: Job, centre: tuple[float, float], sources: torch.Tensor,
                     centres: list[tuple[float, float]]) -> PointFit:
        """The best fit (flux and level by weighted least squares) among unit ``sources`` ``(N, 1, R, R)``
        centred at sharp ``centres``, over the core around ``centre`` (observed pixels): the radius holding 90 %
        of a point's flux there (not its neighbours)."""
        parts, f = self.parts, self.factor
        sources = sources.to(parts.device)
        with torch.no_grad():
            templates = parts.forward(sources)[:, 0].cpu().double()  # unit sources, observed
            y, valid = job.y.double()[0], valid_mask(job.y, job.mask)[0]
            yy, xx = torch.meshgrid(torch.arange(float(y.shape[0])), torch.arange(float(y.shape[1])), indexing="ij")
            radius = ((xx - centre[0]) ** 2 + (yy - centre[1]) ** 2).sqrt()
            core = templates[len(templates) // 2] if len(templates) > 1 else parts.forward(
                _source(sources.shape[-1], centres[0], 0.0).to(parts.device))[0, 0].cpu().double()
            order = radius.flatten().argsort()
            enclosed = core.flatten()[order].cumsum(0) / core.sum()
            aperture = max(2.0, float(radius.flatten()[order][int((enclosed < 0.9).sum())]))
            valid = valid & (radius <= aperture)
            var = self.likelihood.variance(job.y.clamp_min(0)[None].to(parts.device))[0, 0].cpu().double()
            wv = torch.where(valid, 1 / var.clamp_min(1e-12), 0.0)[valid]
            target = (y - self.likelihood.background)[valid]
            null = float((wv * (target - (wv * target).sum() / wv.sum()) ** 2).sum())
            best = None
            for i, t in enumerate(templates):
                design = torch.stack([t[valid], torch.ones_like(target)], -1)
                coef = torch.linalg.lstsq(design * wv.sqrt()[:, None], target * wv.sqrt()).solution
                chi2 = float((wv * (target - design @ coef) ** 2).sum())
                if best is None or chi2 < best.chi2:
                    best = PointFit(chi2, null, int(valid.sum()), coef, sources[i : i + 1], templates[i][None],
                                    centres[i], ((centres[i][0] + 0.5) / f - 0.5, (centres[i][1] + 0.5) / f - 0.5),
                                    aperture)
        return best  # type: ignore[return-value]

    def _searched(self, jobs: list[Job]) -> Iterator[tuple[Job, torch.Tensor, dict[str, Any]]]:
        """Each job's restarts in physical units ``(K, C, R, R)`` and its prior test, searched
        ``search.tile_batch`` jobs at a time, in order; regions are reported as their jobs finish."""
        parts, k, r = self.parts, self.parts.config.restarts, self.parts.prior.resolution
        spec = parts.spec
        it, start = iter(jobs), 0
        while chunk := list(islice(it, spec.search.tile_batch)):
            planes = [self.groups[j.group] * (parts.prior.channels if self.grey else 1) for j in chunk]
            norm = self.norm.for_planes(torch.tensor(planes).repeat_interleave(k, 0))
            denormalise = (lambda v, n=norm: n.inverse(v).mean(-3, keepdim=True)) if self.grey else norm.inverse
            forward = parts.forward
            if chunk[0].warp is not None:
                y_size = tuple(s * self.factor for s in chunk[0].y.shape[-2:])
                matrices = torch.stack([j.warp[:2] for j in chunk]).repeat_interleave(k, 0)
                forward = parts.forward * Warp(matrices, (r, r), y_size).to(parts.device)
            problem = Problem(parts.prior, forward, self.likelihood, denormalise, norm.forward)
            y = torch.stack([j.y for j in chunk]).to(parts.device)
            mask = torch.stack([j.mask for j in chunk]).to(parts.device)
            result = latent_search(problem, y, parts.config, mask=mask, seed=spec.seed + start)
            self.stats.steps = max(self.stats.steps, result.steps_run)
            self.stats.runtime_s = round(self.stats.runtime_s + result.runtime_s, 3)
            with torch.no_grad():
                samples = problem.denormalise(result.images).cpu().reshape(len(chunk), k, -1, r, r)
            consistent = result.consistent.cpu().reshape(len(chunk), k)
            chi2 = result.chi2.cpu().reshape(len(chunk), k)
            counts = mask.flatten(1).sum(1).cpu()
            for i, job in enumerate(chunk):
                samples[i] += job.level / self.gain  # the local background, back in the scene's units
                self.stats.restarts_consistent += int(consistent[i].sum())
                test = prior_test(float(chi2[i].min()), int(counts[i]), spec.consistency.alpha,
                                  parts.config.chi2_range[1])
                test["use"] = consistent[i] if bool(consistent[i].any()) else chi2[i] <= chi2[i].min()
                if job.weight is not None:  # pasted only where the data constrain it
                    test["weight"] = job.weight
                self._report(job, test)
                yield job, samples[i], test
            start += len(chunk)

    def _report(self, job: Job, test: dict[str, Any]) -> None:
        """Add (or update, for further plane groups) the region report of ``job``."""
        regions = self.stats.regions
        while len(regions) <= job.region:
            regions.append({})
        reg = regions[job.region]
        planes = self.groups[job.group]
        entry = {k: v for k, v in test.items() if k not in ("use", "weight")}
        if "box" not in reg:
            reg.update({"kind": reg.get("kind", "tile"), "box": list(job.box), "planes": list(planes), **entry})
        else:
            reg["planes"] = reg["planes"] + list(planes)
            reg["prior_used"] = reg["prior_used"] and entry["prior_used"]
            reg["statistic"] = max(reg["statistic"], entry["statistic"])
            reg["p_value"] = min(reg["p_value"], entry["p_value"])

    def _local_level(self, y: torch.Tensor, mask: torch.Tensor) -> float:
        """The local background of an observed window above the likelihood's: the median of the valid pixels
        of its outer two-pixel ring (a pedestal the prior need not draw)."""
        ring = torch.ones_like(mask)
        ring[..., 2:-2, 2:-2] = False
        values = y[mask & ring & torch.isfinite(y)]
        return float(values.median()) - self.likelihood.background if values.numel() else 0.0

    def _cutout_jobs(self, cutouts: list, window: torch.Tensor) -> list[Job]:
        """Search jobs of cutouts. Unit-scale, whole-pixel cutouts are plain tile crops; otherwise each job
        is the observed window its cutout covers (one size for all), with the cutout's placement on the
        window's sharp grid, only the pixels whose whole PSF footprint the cutout covers count, and its
        paste weight is ``window`` where those pixels see it (:func:`_fitted`)."""
        parts, f = self.parts, self.factor
        r, device = parts.prior.resolution, parts.device
        framing = Framing.from_card(parts.prior.card, r)
        places = [placement(c, framing, f, r) for c in cutouts]
        boxes = [region(p, r, f) for p in places]
        exact = all(is_whole_pixel_shift(p) for p in places)
        size = r // f if exact else max([max(b[2], b[3]) for b in boxes], default=1)
        full = None
        if not exact:  # the PSF footprint of a window pixel, to compare with what a cutout covers
            with torch.no_grad():
                full = parts.forward(torch.ones(1, 1, size * f, size * f, device=device))[0].cpu()
        jobs = []
        for i, (place, (top, left, *_)) in enumerate(zip(places, boxes)):
            local = shifted(place, left * f, top * f)
            covered, op = None, None
            if not exact:
                with torch.no_grad():
                    op = parts.forward * Warp(local[:2], (r, r), (size * f, size * f)).to(device)
                    covered = op(torch.ones(1, 1, r, r, device=device))[0].cpu() >= 0.999 * full
            sharp_top = max(0, int(np.floor(float(placed_corners(place, r)[:, 1].min())))) // f * f
            for g, planes in enumerate(self.groups):
                yw, mw = crop(self.y[planes], self.mask[planes], top, left, size, size)
                level = self._local_level(yw, mw) if self.parts.spec.layout.local_background else 0.0
                mask = mw if covered is None else mw & covered
                jobs.append(Job(g, yw - level, mask, where=place, top=sharp_top, box=(top, left, size, size),
                                region=i, warp=None if exact else local, level=level,
                                weight=None if op is None else window * _fitted(op, mask.to(device))))
        return jobs

    # ------------------------------------------------------------------ the plain estimate
    def plain(self, top: int = 0, rows: int | None = None, left: int = 0, cols: int | None = None) -> torch.Tensor:
        """The plain estimate on the sharp grid: the observation less the likelihood's background,
        upsampled bicubically and divided by the forward model's flat gain, in the restoration's units;
        sharp rows ``[top, top + rows)`` and columns ``[left, left + cols)`` only, with the values of the
        whole frame (bicubic taps reach 2 observed pixels)."""
        f, (_, h, w) = self.factor, self.y.shape
        rows = h * f - top if rows is None else rows
        cols = w * f - left if cols is None else cols
        r0, r1 = max(0, top // f - 2), min(h, -(-(top + rows) // f) + 2)
        c0, c1 = max(0, left // f - 2), min(w, -(-(left + cols) // f) + 2)
        window = self.y[None, :, r0:r1, c0:c1] - self.likelihood.background
        up = F.interpolate(window, scale_factor=f, mode="bicubic", align_corners=False)[0]
        return up[:, top - r0 * f : top - r0 * f + rows, left - c0 * f : left - c0 * f + cols] / self.gain

    def _plain_window(self, top: int, left: int, size: int) -> torch.Tensor:
        """The plain estimate of a ``size x size`` sharp window at ``(top, left)``, zero beyond the frame."""
        _, hh, ww = self.shape
        out = torch.zeros(self.shape[0], size, size)
        t0, l0, t1, l1 = max(top, 0), max(left, 0), min(top + size, hh), min(left + size, ww)
        if t1 > t0 and l1 > l0:
            out[:, t0 - top : t1 - top, l0 - left : l1 - left] = self.plain(t0, t1 - t0, l0, l1 - l0)
        return out


def _source(size: int, centre: tuple[float, float], sigma: float) -> torch.Tensor:
    """A unit-flux round source ``(1, 1, size, size)`` at sharp ``centre`` (x, y): a bilinear delta for
    ``sigma`` 0, else a Gaussian of that sigma integrated over each pixel.

    Example:
        >>> s = _source(8, (3.25, 4.0), 0.0)
        >>> round(float(s.sum()), 6), round(float(s[0, 0, 4, 3]), 4), round(float(s[0, 0, 4, 4]), 4)
        (1.0, 0.75, 0.25)
    """
    cx, cy = centre
    if sigma == 0:
        out = torch.zeros(1, 1, size, size)
        x0, y0 = int(np.floor(cx)), int(np.floor(cy))
        ax, ay = cx - x0, cy - y0
        out[0, 0, y0 : y0 + 2, x0 : x0 + 2] = torch.tensor([[(1 - ay) * (1 - ax), (1 - ay) * ax],
                                                             [ay * (1 - ax), ay * ax]])
        return out
    edges = torch.arange(size + 1, dtype=torch.float64) - 0.5
    gx = torch.diff(torch.special.ndtr((edges - cx) / sigma))
    gy = torch.diff(torch.special.ndtr((edges - cy) / sigma))
    out = gy[:, None] * gx[None, :]
    return (out / out.sum()).float()[None, None]


def _mean_finite(values: np.ndarray) -> float | None:
    finite = values[np.isfinite(values)]
    return float(finite.mean()) if finite.size else None


def region_zones(boxes: list[list[int]], shape: tuple[int, int]) -> torch.Tensor:
    """Labels ``(1, 1, h, w)`` of an observed grid ``shape``: 0 outside every box ``(top, left, height,
    width)``, else ``i + 1`` for the box ``i`` whose centre is nearest among those covering the pixel, so that
    where boxes overlap each keeps its own centre (an object's core stays in its own zone).

    Example:
        >>> region_zones([[0, 0, 4, 4], [0, 2, 4, 4]], (4, 7))[0, 0, 0].tolist()
        [1, 1, 1, 2, 2, 2, 0]
    """
    h, w = shape
    rows = torch.arange(h, dtype=torch.float64)[:, None]
    cols = torch.arange(w, dtype=torch.float64)[None, :]
    labels = torch.zeros(h, w, dtype=torch.long)
    best = torch.full((h, w), math.inf, dtype=torch.float64)
    for i, (t, left, hh, ww) in enumerate(boxes):
        inside = (rows >= t) & (rows < t + hh) & (cols >= left) & (cols < left + ww)
        dist = (rows - (t + (hh - 1) / 2)) ** 2 + (cols - (left + (ww - 1) / 2)) ** 2
        nearer = inside & (dist < best)
        labels[nearer], best[nearer] = i + 1, dist[nearer]
    return labels[None, None]


def _box(region: dict[str, Any]) -> tuple:
    """The index of a region's planes and observed-grid box (clipped at the frame's top and left)."""
    t, left, hh, ww = region["box"]
    return region["planes"], slice(max(t, 0), t + hh), slice(max(left, 0), left + ww)


def _object_cover(regions: list[dict[str, Any]], shape: tuple[int, ...]) -> np.ndarray:
    cover = np.zeros(shape, bool)
    for reg in regions:
        cover[_box(reg)] = True
    return cover


def _fitted(op: LinearOperator, mask: torch.Tensor) -> torch.Tensor:
    """The part ``(R, R)`` of each restored pixel's signal, through ``op`` (cutout to observed window), that
    lands on pixels ``mask`` ``(C, h, w)`` marks as fitted: 1 deep inside a cutout, 0 where no fitted pixel
    sees it.

    Example:
        >>> from restore.degradations import Downsample
        >>> m = torch.zeros(1, 2, 2, dtype=torch.bool); m[:, :, 0] = True
        >>> _fitted(Downsample(2, "mean"), m)[0].tolist()
        [1.0, 1.0, 0.0, 0.0]
    """
    with torch.no_grad():
        hit = op.adjoint(mask.float().mean(0)[None, None])
        total = op.adjoint(torch.ones_like(mask[None, :1], dtype=torch.float32))
    return (hit / total.clamp_min(1e-12))[0, 0].clamp(0, 1).cpu()


def restart_mean(samples: torch.Tensor, scale: float) -> torch.Tensor:
    """The mean of ``k`` restarts ``(k, C, R, R)`` as an estimate of the posterior mean: their detail finer than
    ``scale`` sharp pixels (the observed pixel: what the data do not constrain) is shrunk where the restarts
    disagree, by the positive-part James-Stein factor ``1 - (var / k) / mean^2`` of the detail (local sums over
    ``scale x scale`` windows): the mean of few restarts keeps ``1 / k`` of their disagreement as Monte Carlo
    error, which shows as invented texture. Detail on which they agree, and everything coarser, is kept.

    Example:
        >>> x = torch.zeros(4, 1, 8, 8); x[:, 0, 4, 4] = torch.tensor([3.0, 1.0, 1.0, -1.0])  # they disagree
        >>> round(float(x.mean(0)[0, 4, 4]), 2), round(float(restart_mean(x, 2.0)[0, 4, 4]), 2)
        (1.0, 0.44)
        >>> x[:, 0, 4, 4] = torch.tensor([1.1, 0.9, 1.0, 1.0])  # they agree: the mean, almost unchanged
        >>> round(float(restart_mean(x, 2.0)[0, 4, 4]), 2)
        1.0
    """
    k = samples.shape[0]
    mean = samples.mean(0)
    if k < 2:
        return mean
    sigma = scale / 2
    size = 2 * math.ceil(3 * sigma) + 1
    low = gaussian_blur2d(samples, (size, size), (sigma, sigma), border_type="reflect")
    detail = samples - low
    d_mean, d_var = detail.mean(0), detail.var(0, unbiased=True)
    window = max(int(round(scale)), 1)

    def local(v: torch.Tensor) -> torch.Tensor:
        return F.avg_pool2d(v[None], window, 1, window // 2, count_include_pad=False)[0][..., : v.shape[-2], : v.shape[-1]]

    beta = (1 - local(d_var) / k / local(d_mean**2).clamp_min(1e-30)).clamp(0, 1)
    return low.mean(0) + beta * d_mean
