"""Noise models as likelihoods, in the observation's physical units.

Each likelihood compares an observation ``y`` with the noiseless model ``mu = A(x)`` (both
``(B, C, h, w)``) and gives, per batch item, the negative log-likelihood with all its constants,
the reduced chi-square (chi-square / number of unmasked observed values) and a per-pixel chi map;
it can also draw a noisy observation. Masked pixels (``mask == False``, or ``y`` not finite: NaN,
nodata, saturated) are left out of all three.

- :class:`GaussianNoise`: ``y ~ N(mu, sigma^2)``, ``sigma`` a scalar or a per-pixel map.
- :class:`PoissonNoise`: photon counting, ``gain * y ~ Poisson(gain * (mu + sky))``; exact
  Poisson NLL of the counts ``k = gain * y``, Pearson chi-square ``(k - lambda)^2 / lambda``.
- :class:`PoissonGaussianNoise`: CCD noise (shot noise + read noise, in electrons). Draws are exact
  (Poisson plus Gaussian); the likelihood is the Gaussian approximation with signal-dependent
  variance ``(mu + sky) / gain + (read_noise / gain)^2`` in data units, accurate above a few
  electrons per pixel.

``sky`` is a constant photon background (data units) added to the model: observations include it
and its shot noise, the restored scene does not. ``offset`` (bias, pedestal) is a noise-free constant
the detector adds: observed, but neither signal nor noise. :attr:`Likelihood.background` is their
sum, what the observation reads where the scene is dark. :func:`estimate_sigma` measures the noise of
an observation from the data itself (robust, from a high-pass residual).

Example:
    >>> import torch
    >>> noise = GaussianNoise(0.1)
    >>> mu = torch.zeros(1, 1, 64, 64)
    >>> y = noise.sample(mu, generator=torch.Generator().manual_seed(0))
    >>> 0.9 < float(noise.reduced_chi2(y, mu)) < 1.1
    True
"""

from __future__ import annotations

import math

import torch
from torch import nn

from ._checks import check_bchw


def valid_mask(y: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """Boolean map of the pixels that enter the likelihood: finite and not masked out."""
    valid = torch.isfinite(y)
    if mask is not None:
        valid = valid & mask.to(torch.bool).expand_as(y)
    return valid


class Likelihood(nn.Module):
    """Base class: subclasses give ``variance(mu)`` and ``pixel_nll(y, mu)``, and ``sample(mu)``."""

    def variance(self, mu: torch.Tensor) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def pixel_nll(self, y: torch.Tensor, mu: torch.Tensor) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def sample(self, mu: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        raise NotImplementedError  # pragma: no cover - abstract

    def mean(self, mu: torch.Tensor) -> torch.Tensor:
        """Expected observation for the model ``mu`` (adds the background where there is one)."""
        return mu + self.background

    @property
    def background(self) -> float:
        """What the observation reads where the scene is zero (sky plus offset; 0 for plain Gaussian noise)."""
        return 0.0

    def chi(self, y: torch.Tensor, mu: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """Per-pixel normalised residual ``(y - E[y]) / sd``; NaN where masked."""
        check_bchw(y, "observation")
        valid = valid_mask(y, mask)
        resid = (torch.where(valid, y, 0) - self.mean(mu)) / self.variance(mu).sqrt()
        return torch.where(valid, resid, torch.full_like(resid, float("nan")))

    def nll(self, y: torch.Tensor, mu: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """Negative log-likelihood per batch item ``(B,)``, constants included, masked pixels left out."""
        check_bchw(y, "observation")
        valid = valid_mask(y, mask)
        per_pixel = self.pixel_nll(torch.where(valid, y, self.mean(mu).detach()), mu)
        return torch.where(valid, per_pixel, 0).flatten(1).sum(1)

    def chi2(self, y: torch.Tensor, mu: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """Chi-square per batch item ``(B,)``."""
        return torch.nan_to_num(self.chi(y, mu, mask) ** 2, nan=0.0).flatten(1).sum(1)

    def reduced_chi2(self, y: torch.Tensor, mu: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """Chi-square divided by the number of unmasked observed values, per batch item ``(B,)``."""
        count = valid_mask(y, mask).flatten(1).sum(1).clamp_min(1)
        return self.chi2(y, mu, mask) / count


class GaussianNoise(Likelihood):
    """Additive Gaussian noise of standard deviation ``sigma`` (scalar, or a map broadcastable to ``y``).

    Example:
        >>> import torch
        >>> round(GaussianNoise(1.0).nll(torch.zeros(1, 1, 1, 1), torch.zeros(1, 1, 1, 1)).item(), 6)  # log(2 pi) / 2
        0.918939
    """

    def __init__(self, sigma: float | torch.Tensor) -> None:
        super().__init__()
        sigma_t = torch.as_tensor(sigma, dtype=torch.float64)
        if not torch.all(sigma_t > 0):
            raise ValueError("sigma must be > 0")
        self.register_buffer("sigma", sigma_t)

    def variance(self, mu: torch.Tensor) -> torch.Tensor:
        return (self.sigma.to(mu) ** 2).expand_as(mu)

    def pixel_nll(self, y: torch.Tensor, mu: torch.Tensor) -> torch.Tensor:
        var = self.variance(mu)
        return 0.5 * (y - mu) ** 2 / var + 0.5 * torch.log(2 * math.pi * var)

    def sample(self, mu: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        noise = torch.randn(mu.shape, generator=generator, dtype=mu.dtype, device=mu.device)
        return mu + self.sigma.to(mu) * noise

    def extra_repr(self) -> str:
        s = self.sigma
        return f"sigma={float(s):.4g}" if s.numel() == 1 else f"sigma=map{tuple(s.shape)}"


class _CountingNoise(Likelihood):
    def __init__(self, gain: float, sky: float = 0.0, offset: float = 0.0) -> None:
        super().__init__()
        if not math.isfinite(gain) or gain <= 0:
            raise ValueError(f"gain must be finite and > 0, got {gain}")
        if not math.isfinite(sky) or sky < 0:
            raise ValueError(f"sky must be finite and >= 0, got {sky}")
        if not math.isfinite(offset):
            raise ValueError(f"offset must be finite, got {offset}")
        self.gain, self.sky, self.offset = float(gain), float(sky), float(offset)

    @property
    def background(self) -> float:
        return self.sky + self.offset

    def _electrons(self, mu: torch.Tensor) -> torch.Tensor:
        return (self.gain * (mu + self.sky)).clamp_min(1e-6)

    def extra_repr(self) -> str:
        return ", ".join(f"{k}={getattr(self, k):.4g}" for k in ("gain", "read_noise", "sky", "offset") if hasattr(self, k))

    def _draw_counts(self, mu: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
        return torch.poisson(self._electrons(mu).detach(), generator=generator)


class PoissonNoise(_CountingNoise):
    """Photon noise: ``gain * y`` electrons are Poisson with mean ``gain * (mu + sky)``.

    Example:
        >>> import torch
        >>> PoissonNoise(gain=1.0).nll(torch.ones(1, 1, 1, 1), torch.ones(1, 1, 1, 1)).item()  # 1 - log 1 + log 1!
        1.0
    """

    def variance(self, mu: torch.Tensor) -> torch.Tensor:
        return self._electrons(mu) / self.gain**2

    def pixel_nll(self, y: torch.Tensor, mu: torch.Tensor) -> torch.Tensor:
        lam = self._electrons(mu)
        k = ((y - self.offset) * self.gain).clamp_min(0)
        return lam - k * torch.log(lam) + torch.lgamma(k + 1)

    def sample(self, mu: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        return self._draw_counts(mu, generator) / self.gain + self.offset


class PoissonGaussianNoise(_CountingNoise):
    """CCD noise: Poisson shot noise (``gain`` e-/ADU, ``sky`` ADU) plus Gaussian ``read_noise`` (e-).

    Example:
        >>> import torch
        >>> PoissonGaussianNoise(gain=2.0, read_noise=4.0).variance(torch.full((1, 1, 1, 1), 8.0)).item()
        8.0
    """

    def __init__(self, gain: float, read_noise: float, sky: float = 0.0, offset: float = 0.0) -> None:
        super().__init__(gain, sky, offset)
        if not math.isfinite(read_noise) or read_noise < 0:
            raise ValueError(f"read_noise must be finite and >= 0, got {read_noise}")
        self.read_noise = float(read_noise)

    def variance(self, mu: torch.Tensor) -> torch.Tensor:
        return (self._electrons(mu) + self.read_noise**2) / self.gain**2

    def pixel_nll(self, y: torch.Tensor, mu: torch.Tensor) -> torch.Tensor:
        var = self.variance(mu)
        return 0.5 * (y - self.mean(mu)) ** 2 / var + 0.5 * torch.log(2 * math.pi * var)

    def sample(self, mu: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        counts = self._draw_counts(mu, generator)
        read = torch.randn(mu.shape, generator=generator, dtype=mu.dtype, device=mu.device) * self.read_noise
        return (counts + read) / self.gain + self.offset


def estimate_sigma(data: torch.Tensor, mask: torch.Tensor | None = None) -> float:
    """Robust standard deviation of the noise of an image ``(..., H, W)``: the median absolute deviation of
    its residual under the 3x3 second-difference kernel ``[1,-2,1] x [1,-2,1]`` (blind to planes and slow
    gradients; its norm is 6), over residuals whose nine pixels are all valid. Raises ``ValueError`` when it
    cannot be measured (fewer than 16 such residuals, or none above zero).

    Example:
        >>> import torch
        >>> x = torch.randn(256, 256, generator=torch.Generator().manual_seed(0)) * 3 + torch.linspace(0, 50, 256)
        >>> round(estimate_sigma(x), 1)
        3.0
    """
    x = data.reshape(-1, 1, *data.shape[-2:]).double()
    valid = torch.isfinite(x)
    if mask is not None:
        valid &= mask.reshape(x.shape).to(torch.bool)
    k1 = torch.tensor([1.0, -2.0, 1.0], dtype=torch.float64)
    kernel = torch.outer(k1, k1)[None, None]
    resid = torch.nn.functional.conv2d(torch.where(valid, x, 0.0), kernel)
    full = -torch.nn.functional.max_pool2d(-valid.double(), 3, stride=1) > 0.5
    r = resid[full]
    if r.numel() < 16:
        raise ValueError(f"too few valid pixels to measure the noise ({r.numel()} 3x3 neighbourhoods)")
    sigma = 1.4826 * float((r - r.median()).abs().median()) / 6.0
    if not sigma > 0:
        raise ValueError("the data shows no measurable noise (flat or quantised to one value)")
    return sigma
