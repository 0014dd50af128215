"""Frame-wide data consistency: the image written is ``x = anchor + r``, fitted to every observed pixel.

The anchor is what the band engine made: the prior's restoration where its test accepted it, a plain
upsampling elsewhere. ``r`` minimises

    sum_i w_i (y_i - E[y_i | A(anchor + r)])^2  +  lam * sum_j m_j |grad r|_j^2

(``w = 1 / variance`` of the likelihood at ``A(anchor)``: the Gaussian form of every noise model; ``m`` the
squared slope of the domain's normalisation at the anchor, :func:`stretch_stiffness`, so that the penalty
acts on gradients of the image the prior and the user see: for astronomy's asinh stretch the faint sky and
halos are held smooth while bright cores are fitted, where a linear penalty rings across the faint parts;
1 for a linear normalisation), solved by Jacobi-preconditioned conjugate gradients. ``lam`` is chosen among the weights whose reduced chi-square is at most
``target`` (the discrepancy level), by bisection and a walk in ``log lam``: by default
(``rule="discrepancy"``) Morozov's, the largest such weight; ``rule="risk"``, the one of least estimated
risk (Stein's unbiased risk estimate ``chi2 + 2 dof``, ``dof`` the trace of the correction's hat matrix
per observed value by Hutchinson's probe: the chi-square expected against a new noise draw), which
fits less noise where the anchor needs a strong correction (experimental: on the real-file benchmark it
bought no gain over Morozov's, at more cost and fewer regions in band). Where the anchor is
the plain upsampling, the penalty acts on the image itself (``|grad x|^2``): ``anchor + r`` is then a
classical Tikhonov deconvolution at the discrepancy level, which neither overrules nor over-fits the
data. Where the anchor blends the two (``w * prior + (1 - w) * plain``: the prior's share, or a seam),
the penalty acts on the plain share and ``r`` together (``held``), so the image is ``w * prior + v``
with ``v`` the classical solution of what the prior's share leaves. Where only the prior's content
remains and it already explains the data (reduced chi-square within the consistency band, ``accept``),
``r = 0``: the prior is not nudged inside the band.

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
from collections.abc import Callable
from dataclasses import dataclass

import torch

from .degradations.base import LinearOperator
from .degradations.noise import Likelihood, valid_mask

HIGHEST, LOWEST = 4.0, -8.0
"""log10 of the largest and smallest weight tried, relative to the data term's curvature (the smallest reaches
sources at a signal-to-noise of 10^4 per pixel: sum-binned bright galaxies)."""


def _edges(lam: torch.Tensor | float, like: torch.Tensor) -> tuple[torch.Tensor | float, torch.Tensor | float]:
    """The weights of the vertical and horizontal differences: ``lam`` (a scalar), or the harmonic mean of a
    per-pixel map at each difference's two pixels (a boundary is as stiff as its softer side)."""
    if not isinstance(lam, torch.Tensor):
        return lam, lam
    return (2 * lam[..., 1:, :] * lam[..., :-1, :] / (lam[..., 1:, :] + lam[..., :-1, :]),
            2 * lam[..., :, 1:] * lam[..., :, :-1] / (lam[..., :, 1:] + lam[..., :, :-1]))


def _grad_normal(r: torch.Tensor, lam: torch.Tensor | float = 1.0) -> torch.Tensor:
    """``D^T L D r`` for forward differences ``D`` along both axes (no flux through the borders), each
    difference weighted by ``L`` (:func:`_edges`)."""
    wy, wx = _edges(lam, r)
    out = torch.zeros_like(r)
    dy = (r[..., 1:, :] - r[..., :-1, :]) * wy
    dx = (r[..., :, 1:] - r[..., :, :-1]) * wx
    out[..., 1:, :] += dy
    out[..., :-1, :] -= dy
    out[..., :, 1:] += dx
    out[..., :, :-1] -= dx
    return out


def _grad_diagonal(like: torch.Tensor, lam: torch.Tensor | float) -> torch.Tensor:
    """The diagonal of ``D^T L D`` on images shaped ``like``: each pixel's sum of its differences' weights."""
    wy, wx = _edges(lam, like)
    out = torch.zeros_like(like)
    out[..., 1:, :] += wy
    out[..., :-1, :] += wy
    out[..., :, 1:] += wx
    out[..., :, :-1] += wx
    return out


def _cg(apply: callable, rhs: torch.Tensor, x: torch.Tensor, iterations: int,  # type: ignore[valid-type]
        inverse_diagonal: torch.Tensor | None = None) -> torch.Tensor:
    """Conjugate gradients for the symmetric positive system ``apply(x) = rhs``, from ``x``, preconditioned by
    ``inverse_diagonal`` (Jacobi's: needed where the penalty's weight varies by orders of magnitude)."""
    m = inverse_diagonal if inverse_diagonal is not None else 1.0
    r = rhs - apply(x)
    z = m * r
    p, rz = z.clone(), (r * z).sum()
    stop = 1e-8 * float((rhs * rhs).sum()) + 1e-30
    for _ in range(iterations):
        if float((r * r).sum()) <= stop:
            break
        ap = apply(p)
        alpha = rz / (p * ap).sum().clamp_min(1e-30)
        x = x + alpha * p
        r = r - alpha * ap
        z = m * r
        rz_new = (r * z).sum()
        p = z + (rz_new / rz.clamp_min(1e-30)) * p
        rz = rz_new
    return x


@dataclass
class Fit:
    """A band's correction ``r`` (sharp grid), the weight ``lam`` chosen (its median when local; ``inf``: none
    needed), the reduced chi-square of ``anchor`` and of ``anchor + r`` over the band's counted pixels, the
    correction's effective degrees of freedom per counted pixel (``dof``, Hutchinson's estimate of the trace
    of its hat matrix) and its estimated risk ``chi2 + 2 dof``: the reduced chi-square expected against a
    second, independent noise draw (Stein's unbiased risk estimate, plus one); ``level``, the single weight's
    ``log10`` relative to the data curvature (where the next band's walk may start: ``correct``'s ``start``)."""

    r: torch.Tensor
    lam: float
    chi2_anchor: float
    chi2: float
    dof: float = 0.0
    level: float = math.nan


@dataclass
class _Trial:
    level: float
    r: torch.Tensor
    chi2: float
    probe: torch.Tensor | None = None
    dof: float = math.nan

    @property
    def risk(self) -> float:
        return self.chi2 + 2 * self.dof


class _Normal:
    """A band's normal equations ``(A^T W A + D^T L D) r = A^T W (y - mean) - D^T L D held``, their data
    misfit, and the trace of their hat matrix by a fixed Gaussian probe (Hutchinson)."""

    def __init__(self, forward: LinearOperator, weight: torch.Tensor, resid: torch.Tensor, valid: torch.Tensor,
                 held: torch.Tensor, iterations: int) -> None:
        self.forward, self.weight, self.resid, self.held, self.iterations = forward, weight, resid, held, iterations
        self.n = max(int(valid.sum()), 1)
        self.rhs = forward.adjoint(weight * resid)
        z = torch.randn(resid.shape, generator=torch.Generator().manual_seed(0), dtype=resid.dtype)
        self.probe = torch.where(valid, z.to(resid.device), 0.0) * weight.sqrt()  # W^(1/2) z
        self.probe_rhs = forward.adjoint(self.probe)
        # the data term's diagonal, sum_i w_i A_ij^2 ~ (A^T w)_j |A e|^2 / sum(A e) for an impulse e (slow w)
        e = torch.zeros(1, 1, 8 * forward.scale(), 8 * forward.scale(), dtype=resid.dtype, device=resid.device)
        e[..., e.shape[-2] // 2, e.shape[-1] // 2] = 1.0
        response = forward(e.expand(-1, resid.shape[1], -1, -1))
        self.data_diagonal = forward.adjoint(weight) * float((response**2).sum() / response.sum().clamp_min(1e-30))

    def misfit(self, r: torch.Tensor) -> torch.Tensor:
        """Weighted squared residuals of ``anchor + r``, summed over channels, ``(1, 1, h, w)``."""
        return (self.weight * (self.resid - self.forward(r)) ** 2).sum(1, keepdim=True)

    def chi2(self, r: torch.Tensor) -> float:
        return float(self.misfit(r).sum()) / self.n

    def _cg(self, lam: float | torch.Tensor, rhs: torch.Tensor, start: torch.Tensor, steps: int) -> torch.Tensor:
        diagonal = self.data_diagonal + _grad_diagonal(rhs, lam)
        return _cg(lambda v: self.forward.adjoint(self.weight * self.forward(v)) + _grad_normal(v, lam),
                   rhs, start, steps, 1.0 / diagonal.clamp_min(1e-30))

    def trial(self, level: float, lam: float | torch.Tensor, start: _Trial | None, risk: bool,
              steps: int | None = None) -> _Trial:
        """The solution for the weight ``lam`` (warm-started from ``start``) and, when ``risk``, its dof."""
        steps = steps or self.iterations
        r0 = start.r if start is not None else torch.zeros_like(self.rhs)
        r = self._cg(lam, self.rhs - _grad_normal(self.held, lam), r0, steps)
        trial = _Trial(level, r, self.chi2(r))
        if risk:
            p0 = start.probe if start is not None and start.probe is not None else torch.zeros_like(self.rhs)
            trial.probe = self._cg(lam, self.probe_rhs, p0, steps)
            trial.dof = float((self.probe * self.forward(trial.probe)).sum()) / self.n
        return trial


def _walk(system: _Normal, levels: list[float], lam_of: callable, rule: str, target: float,  # type: ignore[valid-type]
          floor: float, start: _Trial | None = None, first_steps: int | None = None) -> _Trial:
    """From the smoothest level down (warm starts: CG converges slowly for large weights, so never start those
    cold), the level the rule chooses. First the smoothest whose chi-square is at most ``target`` (bisected
    with the level above): ``discrepancy`` stops there; ``risk`` goes on down to the least estimated risk
    among those with chi-square in ``[floor, target]`` (stopping when chi-square falls below ``floor``, noise
    fitting, or the risk has risen twice), refined half a step either side. Where no level reaches
    ``target``, the last (least chi-square). Where the first level already reaches it (a walk started below
    ``HIGHEST``, from a neighbouring band's level), the discrepancy rule climbs to the smoothest that does."""
    risk = rule == "risk"
    above, chosen, rising = None, None, 0
    step = abs(levels[1] - levels[0]) if len(levels) > 1 else 0.0
    for i, level in enumerate(levels):
        start = system.trial(level, lam_of(level), start, risk, first_steps if i == 0 else None)
        if start.chi2 > target:
            above = start
            continue
        if chosen is None:
            if above is not None:
                chosen = _bisect(system, lam_of, above.level, start, target, risk, floor)
            else:
                chosen = start if risk else _climb(system, lam_of, start, target, floor)
            if not risk:
                return chosen
        if start.chi2 < floor:
            break
        if start.risk < chosen.risk:
            chosen, rising = start, 0
        elif start is not chosen:
            rising += 1
        if rising == 2:
            break
    if chosen is None:
        return start  # type: ignore[return-value]
    for level in (chosen.level + step / 2, chosen.level - step / 2):
        trial = system.trial(level, lam_of(level), chosen, True)
        if floor <= trial.chi2 <= target and trial.risk < chosen.risk:
            chosen = trial
    return chosen


def _climb(system: _Normal, lam_of: callable, low: _Trial, target: float, floor: float,  # type: ignore[valid-type]
           step: float = 0.5) -> _Trial:
    """From a level whose chi-square is at most ``target``, up by ``step`` to the first that is not (then
    bisected between them), or to ``HIGHEST``."""
    while low.level < HIGHEST:
        level = min(low.level + step, HIGHEST)
        trial = system.trial(level, lam_of(level), low, False)
        if trial.chi2 > target:
            return _bisect(system, lam_of, level, low, target, False, floor)
        low = trial
    return low


def _bisect(system: _Normal, lam_of: callable, high: float, low: _Trial, target: float,  # type: ignore[valid-type]
            risk: bool, floor: float = 0.0, steps: int = 3, most: int = 8) -> _Trial:
    """The smoothest level in ``[low.level, high]`` whose chi-square is at most ``target``, by bisection:
    ``steps`` halvings, more (up to ``most``) while its chi-square is still below ``floor`` (a steep curve)."""
    for step in range(most):
        if step >= steps and low.chi2 >= floor:
            break
        trial = system.trial((low.level + high) / 2, lam_of((low.level + high) / 2), low, risk)
        if trial.chi2 <= target:
            low = trial
        else:
            high = trial.level
    return low


def stretch_stiffness(normalise: Callable[[torch.Tensor], torch.Tensor], anchor: torch.Tensor) -> torch.Tensor | None:
    """The smoothness weight per pixel ``(1, 1, H, W)`` that makes the penalty act on gradients of the
    normalised image (the stretch the prior and the user see): the squared slope of ``normalise`` at
    ``anchor``, relative to its median (clamped to ``10^+-8``); ``None`` for a linear normalisation.

    Example:
        >>> from restore.domains.astronomy import Asinh
        >>> m = stretch_stiffness(Asinh(1.0, 1000.0).forward, torch.tensor([0.0, 0.0, 10.0]).reshape(1, 1, 1, 3))
        >>> [round(v, 4) for v in m.flatten().tolist()]
        [1.0, 1.0, 0.0099]
    """
    v = anchor.detach().clone().requires_grad_(True)
    with torch.enable_grad():
        normalise(v).sum().backward()
    slope = v.grad.mean(1, keepdim=True) ** 2  # type: ignore[union-attr]
    mid = slope.median()
    if float((slope - mid).abs().max()) <= 1e-6 * float(mid):
        return None
    return (slope / mid.clamp_min(1e-30)).clamp(1e-8, 1e8)


def block_zones(shape: tuple[int, int], size: int, device: torch.device | str = "cpu") -> torch.Tensor:
    """Labels ``(1, 1, h, w)`` of ``size x size`` blocks of an observed grid ``shape``, row by row.

    Example:
        >>> block_zones((4, 6), 3)[0, 0].tolist()
        [[0, 0, 0, 1, 1, 1], [0, 0, 0, 1, 1, 1], [0, 0, 0, 1, 1, 1], [2, 2, 2, 3, 3, 3]]
    """
    h, w = shape
    rows = torch.arange(h, device=device) // size
    cols = torch.arange(w, device=device) // size
    return (rows[:, None] * ((w + size - 1) // size) + cols[None, :])[None, None]


def level_zones(zones: torch.Tensor, y: torch.Tensor, count: torch.Tensor, likelihood: Likelihood,
                levels: int, least: int = 16) -> torch.Tensor:
    """Each zone of ``zones`` ``(1, 1, h, w)`` split by signal level: the observation ``y`` ``(C, h, w)``
    (3 x 3 mean, ``count``: its valid pixels) less its median, over the noise's standard deviation, in
    half-decade classes (below 10^0.5, 10^0.5 to 10, ...; ``levels`` of them, the last open), so that the
    discrepancy principle holds at every level: a bright core the penalty holds back is no longer balanced
    by fitting the noise of the faint sky around it. A class with fewer than ``least`` values joins the one
    below it in its zone (a chi-square over fewer values says little). ``levels = 1``: ``zones`` as given.

    Example:
        >>> from restore.degradations import GaussianNoise
        >>> y = torch.zeros(1, 8, 8); y[0, :, 6:] = 100.0  # two columns 100 sigma above the median
        >>> z = level_zones(torch.zeros(1, 1, 8, 8, dtype=torch.long), y, torch.ones_like(y, dtype=torch.bool),
        ...                 GaussianNoise(1.0), 6)
        >>> z[0, 0, 3].tolist()  # 33 and 67 sigma (class 3); the edge's 100 (class 4): 8 values, joins class 3
        [0, 0, 0, 0, 0, 3, 3, 3]
    """
    if levels <= 1:
        return zones
    valid = valid_mask(y, count)
    smooth = torch.nn.functional.avg_pool2d(torch.where(valid, y, 0.0)[None], 3, 1, 1)[0]
    smooth = smooth / torch.nn.functional.avg_pool2d(valid[None].float(), 3, 1, 1)[0].clamp_min(1e-6)
    level = torch.stack([plane[ok].median() if ok.any() else plane.new_zeros(()) for plane, ok in zip(smooth, valid)])
    signal = smooth - level[:, None, None]
    sd = likelihood.variance((smooth - likelihood.background).clamp_min(0)[None])[0].clamp_min(1e-30).sqrt()
    snr = (signal.abs() / sd).amax(0)
    cls = (2 * torch.log10(snr.clamp_min(1.0))).floor().clamp(0, levels - 1).long()
    base = zones[0, 0] * levels
    for _ in range(levels):
        labels = base + cls
        small = (torch.bincount(labels.flatten(), minlength=int(labels.max()) + 1)[labels] < least) & (cls > 0)
        if not bool(small.any()):
            break
        cls = torch.where(small, cls - 1, cls)
    return (base + cls)[None, None]


def _zoned(system: _Normal, labels: torch.Tensor, single: _Trial, lam: float, f: int, target: float, rounds: int,
           bounds: tuple[float, float], stiff: torch.Tensor | float = 1.0) -> tuple[_Trial, torch.Tensor]:
    """The discrepancy principle per zone: each zone (``labels`` on the observed grid) gets its own multiple of
    the single weight ``lam``, the largest whose zone chi-square is at most ``target``, by ``rounds`` of
    bisection in ``log10`` run in all zones at once (one solve per round; zones interact only through the
    forward model's reach). Zones without observed values keep ``lam``. Returns the solution and weight map."""
    flat = labels.flatten()
    count = torch.bincount(flat, weights=(system.weight > 0).float().sum(1).flatten())
    k = count.numel()
    level = torch.zeros(k, dtype=torch.float64)
    low = torch.full((k,), math.nan, dtype=torch.float64)  # the largest level known to fit (chi2 <= target)
    high = torch.full((k,), math.nan, dtype=torch.float64)  # the smallest level known not to
    lo_b, hi_b = math.log10(bounds[0] / lam), math.log10(bounds[1] / lam)

    def weights(levels: torch.Tensor) -> torch.Tensor:
        per = (lam * 10.0 ** levels[flat].reshape(labels.shape)).to(system.rhs.dtype)
        return per.repeat_interleave(f, -2).repeat_interleave(f, -1) * stiff

    trial = single
    for _ in range(rounds):
        chi2 = torch.bincount(flat, weights=system.misfit(trial.r).flatten(), minlength=k).double() / count.clamp_min(1).double()
        fit = chi2 <= target
        low = torch.where(fit, level, low)
        high = torch.where(fit, high, level)
        up = torch.where(torch.isnan(high), level + 0.5, (level + high) / 2)
        down = torch.where(torch.isnan(low), level - 1.0, (level + low) / 2)
        level = torch.where(count > 0, torch.where(fit, up, down), level).clamp(lo_b, hi_b)
        trial = system.trial(0.0, weights(level), trial, False)
    best_levels = torch.where(torch.isnan(low), level, low)  # the fitting level where one is known
    lam_map = weights(best_levels)
    return system.trial(0.0, lam_map, trial, False), lam_map


def correct(forward: LinearOperator, likelihood: Likelihood, y: torch.Tensor, count: torch.Tensor,
            anchor: torch.Tensor, plain: torch.Tensor | None = None, target: float = 1.0,
            iterations: int = 30, accept: tuple[float, float] | None = None, rounds: int = 0,
            window: int = 9, protect: torch.Tensor | None = None, rule: str = "discrepancy",
            zones: torch.Tensor | None = None, stiffness: torch.Tensor | None = None,
            held: torch.Tensor | None = None, start: float | None = None) -> Fit:
    """Fit ``r`` for an observed band ``y`` ``(1, C, h, w)`` (``count``: the pixels that enter the data
    term) and its ``anchor`` ``(1, C, h * f, w * f)``. ``plain`` (0..1, the anchor's shape) is the part of
    each pixel that is the plain upsampling, not the prior: there the gradient penalty acts on the image
    itself (a classical Tikhonov deconvolution, which also stops noise fitting), elsewhere on ``r`` only.
    Without a plain part, an anchor whose reduced chi-square lies in ``accept`` (the consistency band;
    default: at most ``target``) is left alone; one below the band fits noise, and is smoothed like a plain
    part (except where ``protect``: fitted point sources) until it no longer does.

    The weight: ``rule="discrepancy"`` (default), Morozov's, the largest whose reduced chi-square is at
    most ``target``; ``rule="risk"``, among the weights whose chi-square is at most ``target``, the one of least
    estimated risk (:class:`Fit`), which stops the noise fitting a weight set to exactly the discrepancy level
    does where the anchor needs a strong correction. ``rounds`` > 0 then makes the weight local per zone
    (``zones``, labels on the observed grid, e.g. the engine's regions and background; default
    ``window x window`` blocks): the discrepancy principle per zone by bisection (:func:`_zoned`), so that
    bright sources no longer force noise fitting on blank sky; by the risk rule the zones' shape is kept and
    its level walked. The zoned solution is kept only when the band stays inside the consistency band and
    (risk) its risk is less. ``stiffness`` ``(1, 1, H, W)``, when given, multiplies the weight per sharp pixel
    (:func:`stretch_stiffness`). ``held`` (the anchor's shape) is the image of the anchor's plain part that
    the penalty acts on beside ``r`` (default ``plain * anchor``, exact where a pixel is all plain or all prior;
    where the anchor mixes the prior's restoration with the plain upsampling, the plain share of it).
    ``start`` (discrepancy rule): a neighbouring band's ``Fit.level``; the walk for the single weight begins a
    decade above it instead of at ``HIGHEST`` (climbing where that already fits), which saves the stiff
    trials far from the answer."""
    if rule not in ("risk", "discrepancy"):
        raise ValueError(f"rule must be 'risk' or 'discrepancy', not {rule!r}")
    with torch.no_grad():
        anchor = anchor.float()
        y = y.float()
        valid = valid_mask(y, count)
        mu = forward(anchor)
        f = anchor.shape[-1] // y.shape[-1]
        # the variance where the anchor is the plain upsampling is taken at its 3 x 3 observed-pixel mean: at the
        # noisy upsampling itself the weights follow its noise (lower where it drew high), which biases a fitted
        # sky level low (Pearson's bias); the image written is smooth there, as the weights then assume
        at = mu
        if plain is not None:
            part = torch.nn.functional.avg_pool2d(plain.float().mean(1, keepdim=True), f)
            at = mu + part * (torch.nn.functional.avg_pool2d(mu, 3, 1, 1, count_include_pad=False) - mu)
        weight = torch.where(valid, 1.0 / likelihood.variance(at).clamp_min(1e-12), 0.0)
        resid = torch.where(valid, y - likelihood.mean(mu), 0.0)
        n = max(int(valid.sum()), 1)
        chi2_anchor = float((weight * resid**2).sum()) / n
        low_ok, high_ok = accept if accept is not None else (0.0, target)
        if chi2_anchor < low_ok:  # the anchor fits the noise: smooth the image itself, points excepted, just
            whole = torch.ones_like(anchor) if protect is None else (~protect).to(anchor.dtype)
            if held is not None and plain is not None:  # a blended pixel keeps its prior share; the rest: all
                held = torch.where(plain > 0, held, whole * anchor)
            plain = whole
            target = 0.5 * (low_ok + target)  # into the band (the least change that makes it consistent)
        smooth = plain is not None and bool((plain > 0).any())
        if (chi2_anchor <= high_ok and not smooth) or not bool(valid.any()):
            return Fit(torch.zeros_like(anchor).float(), math.inf, chi2_anchor, chi2_anchor)
        if not smooth:
            held = torch.zeros_like(anchor)  # what the penalty holds to zero, with r
        elif held is None:
            held = plain.float() * anchor
        held = held.float()
        system = _Normal(forward, weight, resid, valid, held, iterations)
        scale = float(weight[valid].median()) * forward.flat_gain() ** 2  # lam relative to the data curvature
        levels = [HIGHEST - 0.5 * i for i in range(int(round((HIGHEST - LOWEST) / 0.5)) + 1)]
        if start is not None and math.isfinite(start) and rule == "discrepancy":
            levels = [v for v in levels if v <= start + 1.0] or levels[-1:]
        stiff = 1.0 if stiffness is None else stiffness.to(anchor.dtype)
        best = single = _walk(system, levels, lambda s: scale * 10.0**s * stiff, rule, target, low_ok,
                              first_steps=4 * iterations)
        lam = scale * 10.0**single.level
        if rounds:
            labels = zones if zones is not None else block_zones(y.shape[-2:], window, y.device)
            shaped, lam_map = _zoned(system, labels, single, lam, f, target, rounds,
                                     (scale * 10.0**LOWEST, scale * 10.0**HIGHEST), stiff)
            if rule == "risk":  # the zones' shape kept, its level the one of least risk
                shaped = _walk(system, [1.0 - 0.5 * i for i in range(5)], lambda s: lam_map * 10.0**s, rule,
                               target, low_ok, first_steps=4 * iterations)
            fits = low_ok <= shaped.chi2 <= max(high_ok, single.chi2)  # the zoned weights must not leave the band
            if fits and (shaped.risk < single.risk if rule == "risk" else True):
                best, lam = shaped, float(lam_map.median()) * 10.0**shaped.level
        dof = best.dof if rule == "risk" else math.nan
        return Fit(best.r.to(torch.float32), lam, chi2_anchor, best.chi2, dof, single.level)


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
