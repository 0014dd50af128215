"""Frame-wide data consistency: the image written is ``x = anchor + r``, fitted to every observed pixel.

The anchor is what the band engine made: the prior's restoration where its test accepted it, a plain
upsampling elsewhere. ``r`` minimises

    sum_i w_i (y_i - E[y_i | A(anchor + r)])^2  +  lam * |grad r|^2

(``w = 1 / variance`` of the likelihood at ``A(anchor)``: the Gaussian form of every noise model),
solved by conjugate gradients, with ``lam`` set by Morozov's discrepancy principle: the largest
weight whose reduced chi-square is at most ``target`` (bisection in ``log lam``). Where the anchor is
the plain upsampling, the penalty acts on the image itself (``|grad x|^2``): ``anchor + r`` is then a
classical Tikhonov deconvolution at the discrepancy level, which neither overrules nor over-fits the
data. Where only the prior's content remains and it already explains the data (reduced chi-square
within the consistency band, ``accept``), ``r = 0``: the prior is not nudged inside the band.

The weight is set per band of observed rows (:func:`correct_rows`), each solved on its sharp rows
with the forward model's reach as margin on both sides, so memory holds a band, never the frame.

Example:
    >>> import torch
    >>> from restore.degradations import Blur, Downsample, GaussianNoise
    >>> A = Downsample(2, "mean") * Blur.gaussian(2.0)
    >>> truth = torch.zeros(1, 1, 32, 32); truth[..., 12:20, 12:20] = 10.0
    >>> noise = GaussianNoise(0.1)
    >>> y = noise.sample(A(truth), generator=torch.Generator().manual_seed(0))
    >>> fit = correct(A, noise, y, torch.ones_like(y, dtype=torch.bool), torch.zeros_like(truth), torch.ones_like(truth))
    >>> 0.8 < fit.chi2 < 1.2
    True
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from .degradations.base import LinearOperator
from .degradations.noise import Likelihood, valid_mask

HIGHEST, LOWEST = 4.0, -4.0
"""log10 of the largest and smallest relative weight tried (relative to the data term's curvature)."""


def _grad_normal(r: torch.Tensor, lam: torch.Tensor | float = 1.0) -> torch.Tensor:
    """``D^T L D r`` for forward differences ``D`` along both axes (no flux through the borders), each
    difference weighted by ``L``: the mean of ``lam`` (a scalar or a per-pixel map) at its two pixels."""
    out = torch.zeros_like(r)
    dy = r[..., 1:, :] - r[..., :-1, :]
    dx = r[..., :, 1:] - r[..., :, :-1]
    if isinstance(lam, torch.Tensor):
        dy = dy * (lam[..., 1:, :] + lam[..., :-1, :]) / 2
        dx = dx * (lam[..., :, 1:] + lam[..., :, :-1]) / 2
    else:
        dy, dx = dy * lam, dx * lam
    out[..., 1:, :] += dy
    out[..., :-1, :] -= dy
    out[..., :, 1:] += dx
    out[..., :, :-1] -= dx
    return out


def local_chi2(chi2: torch.Tensor, valid: torch.Tensor, window: int) -> torch.Tensor:
    """Mean of a per-pixel chi-square map ``(B, C, h, w)`` over the valid pixels of each ``window x window``
    neighbourhood (all channels together), ``(B, 1, h, w)``; NaN where none is valid."""
    pool = lambda t: torch.nn.functional.avg_pool2d(t.sum(1, keepdim=True), window, 1, window // 2,  # noqa: E731
                                                   count_include_pad=False)
    return pool(torch.where(valid, chi2, 0.0)) / pool(valid.float())


def _cg(apply: callable, rhs: torch.Tensor, x: torch.Tensor, iterations: int) -> torch.Tensor:  # type: ignore[valid-type]
    """Conjugate gradients for the symmetric positive system ``apply(x) = rhs``, from ``x``."""
    r = rhs - apply(x)
    p, rs = r.clone(), (r * r).sum()
    stop = 1e-8 * float((rhs * rhs).sum()) + 1e-30
    for _ in range(iterations):
        if float(rs) <= stop:
            break
        ap = apply(p)
        alpha = rs / (p * ap).sum().clamp_min(1e-30)
        x = x + alpha * p
        r = r - alpha * ap
        rs_new = (r * r).sum()
        p = r + (rs_new / rs) * p
        rs = rs_new
    return x


@dataclass
class Fit:
    """A band's correction ``r`` (sharp grid), the weight ``lam`` chosen (its median when local; ``inf``: none
    needed), and the reduced chi-square of ``anchor`` and of ``anchor + r`` over the band's counted pixels."""

    r: torch.Tensor
    lam: float
    chi2_anchor: float
    chi2: float


def correct(forward: LinearOperator, likelihood: Likelihood, y: torch.Tensor, count: torch.Tensor,
            anchor: torch.Tensor, plain: torch.Tensor | None = None, target: float = 1.0,
            iterations: int = 30, accept: tuple[float, float] | None = None, rounds: int = 0,
            window: int = 9, protect: torch.Tensor | None = None) -> Fit:
    """Fit ``r`` for an observed band ``y`` ``(1, C, h, w)`` (``count``: the pixels that enter the data
    term) and its ``anchor`` ``(1, C, h * f, w * f)``. ``plain`` (0..1, the anchor's shape) is the part of
    each pixel that is the plain upsampling, not the prior: there the gradient penalty acts on the image
    itself (a classical Tikhonov deconvolution, which also stops noise fitting), elsewhere on ``r`` only.
    Without a plain part, an anchor whose reduced chi-square lies in ``accept`` (the consistency band;
    default: at most ``target``) is left alone; one below the band fits noise, and is smoothed like a plain
    part (except where ``protect``: fitted point sources) until it no longer does. ``rounds`` > 0 then makes the weight local: each round multiplies it, per pixel, by
    ``(target / local chi2)^1.5`` (local chi2 over ``window`` observed pixels), so that the discrepancy
    holds in every neighbourhood, not only on average (bright sources no longer force noise fitting
    on blank sky); a local solution that fits the band worse than the single weight did and above the
    consistency band is not taken."""
    with torch.no_grad():
        anchor = anchor.float()
        y = y.float()
        valid = valid_mask(y, count)
        n = max(int(valid.sum()), 1)
        mu = forward(anchor)
        weight = torch.where(valid, 1.0 / likelihood.variance(mu).clamp_min(1e-12), 0.0)
        resid = torch.where(valid, y - likelihood.mean(mu), 0.0)

        def chi2_of(r: torch.Tensor) -> float:
            return float((weight * (resid - forward(r)) ** 2).sum()) / n

        chi2_anchor = chi2_of(torch.zeros_like(anchor))
        low_ok, high_ok = accept if accept is not None else (0.0, target)
        if chi2_anchor < low_ok:  # the anchor fits the noise: smooth the image itself, points excepted
            plain = torch.ones_like(anchor) if protect is None else (~protect).to(anchor.dtype)
        smooth = plain is not None and bool((plain > 0).any())
        if (chi2_anchor <= high_ok and not smooth) or not bool(valid.any()):
            return Fit(torch.zeros_like(anchor).float(), math.inf, chi2_anchor, chi2_anchor)
        data_rhs = forward.adjoint(weight * resid)
        held = plain.float() * anchor if smooth else torch.zeros_like(anchor)  # what the penalty holds to zero
        scale = float(weight[valid].median()) * forward.flat_gain() ** 2  # lam relative to the data curvature

        def solve(lam: float | torch.Tensor, start: torch.Tensor, steps: int = iterations) -> torch.Tensor:
            """The normal equations' solution for the weight ``lam`` (a scalar or a per-pixel map), by CG."""
            return _cg(lambda v: forward.adjoint(weight * forward(v)) + _grad_normal(v, lam),
                       data_rhs - _grad_normal(held, lam), start, steps)

        # From the smoothest weight down, half a decade at a time, each solve warm-started from the
        # smoother one (CG converges slowly for large weights, so never start those cold from a rough
        # image); then bisect the last half decade. chi2 grows with the weight.
        log_lam, best = HIGHEST, solve(scale * 10.0**HIGHEST, torch.zeros_like(anchor), 4 * iterations)
        above = None
        while chi2_of(best) > target and log_lam > LOWEST:
            above, log_lam = log_lam, log_lam - 0.5
            best = solve(scale * 10.0**log_lam, best)
        if above is not None and chi2_of(best) <= target:
            low = log_lam
            for _ in range(3):
                mid = (low + above) / 2
                trial = solve(scale * 10.0**mid, best)
                if chi2_of(trial) <= target:
                    low, best = mid, trial
                else:
                    above = mid
            log_lam = low
        lam = scale * 10.0**log_lam
        single, single_chi2 = best, chi2_of(best)  # Morozov with one weight: the local rounds must not fit worse
        if rounds and math.isfinite(lam):
            f = anchor.shape[-1] // y.shape[-1]
            lam_map = torch.full_like(anchor[:, :1], lam)
            bounds = (scale * 10.0**LOWEST, scale * 10.0**HIGHEST)
            for _ in range(rounds):
                per_pixel = weight * (resid - forward(best)) ** 2
                ratio = torch.nan_to_num(local_chi2(per_pixel, valid, window) / target, nan=1.0).clamp(0.1, 10.0)
                step = ratio.repeat_interleave(f, -2).repeat_interleave(f, -1) ** -1.5
                lam_map = (lam_map * step).clamp(*bounds)
                best = solve(lam_map, best)
            # the local shape kept; where the band as a whole now fits below the target (noise fitting), the
            # level is raised until it does not. A misfit that is left is local (a model mismatch: a star's
            # real PSF): it is reported, never hidden by fitting noise elsewhere.
            low = 0.0
            if chi2_of(best) < target:
                high = 2.0
                for _ in range(5):
                    mid = (low + high) / 2
                    trial = solve(lam_map * 10.0**mid, best)
                    if chi2_of(trial) <= target:
                        low, best = mid, trial
                    else:
                        high = mid
            lam = float(lam_map.median()) * 10.0**low
            if chi2_of(best) > max(high_ok, single_chi2):  # the local weights leave the band: one weight stands
                best, lam = single, scale * 10.0**log_lam
        return Fit(best.to(torch.float32), lam, chi2_anchor, chi2_of(best))


@dataclass
class BandPlan:
    """Observed rows ``[first, end)`` whose correction is kept, solved on sharp rows ``[lo, hi)`` with the
    observed rows ``[count_lo, count_hi)`` (those whose inputs all lie inside) in the data term."""

    first: int
    end: int
    lo: int
    hi: int
    count_lo: int
    count_hi: int


def plan_bands(height: int, factor: int, reach: int, band: int) -> list[BandPlan]:
    """Bands of ``band`` observed rows over an observation ``height`` rows high (see :class:`BandPlan`).

    Example:
        >>> [(p.first, p.end, p.lo, p.hi) for p in plan_bands(100, 2, 4, 64)]
        [(0, 64, 0, 136), (64, 100, 120, 200)]
    """
    margin = 2 * reach  # sharp rows on each side: the kept rows' observed neighbours see all their inputs
    plans = []
    for first in range(0, height, band):
        end = min(first + band, height)
        lo, hi = max(0, first * factor - margin), min(height * factor, end * factor + margin)
        count_lo = lo // factor + (reach // factor if lo > 0 else 0)
        count_hi = hi // factor - (reach // factor if hi < height * factor else 0)
        plans.append(BandPlan(first, end, lo, hi, count_lo, count_hi))
    return plans
