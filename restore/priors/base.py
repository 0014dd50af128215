"""The ``Prior`` interface: a generator, the latent spaces it offers, and its model card.

Style-based generators (with ``mapping``/``synthesis``) offer ``z``, ``w`` and ``w+`` and noise
maps; any other ``nn.Module`` mapping a latent ``(B, latent_dim)`` to an image offers ``z``.
Images are in the prior's normalised range ``output_range`` (``(-1, 1)``), shape ``(B, C, R, R)``.

Example:
    >>> import torch
    >>> from restore.priors.dcgan import DCGANGenerator
    >>> prior = Prior(DCGANGenerator(16, 16, 8), {"name": "toy", "resolution": 16, "channels": 3,
    ...                                            "latent_dim": 16})
    >>> prior.latent_spaces, prior.generate(prior.sample_latent(2)).shape
    (('z',), torch.Size([2, 3, 16, 16]))
"""

from __future__ import annotations

import math
from typing import Any, Literal

import torch
from torch import nn

LatentSpace = Literal["z", "w", "w+"]
LRELU_SLOPE, LRELU_GAIN = 0.2, math.sqrt(2.0)


class Prior(nn.Module):
    """A generative prior: ``generate(latent, space)`` renders images in the normalised range."""

    def __init__(self, generator: nn.Module, card: dict[str, Any]) -> None:
        super().__init__()
        self.generator = generator.eval().requires_grad_(False)
        self.card = dict(card)
        self.name: str = str(card.get("name", "unnamed"))
        self.resolution: int = int(card["resolution"])
        self.channels: int = int(card["channels"])
        self.latent_dim: int = int(card["latent_dim"])
        self.latent_distribution: str = str(card.get("latent_distribution", "normal"))
        self.output_range: tuple[float, float] = tuple(card.get("output_range", (-1.0, 1.0)))  # type: ignore[assignment]
        self.style_based = hasattr(generator, "mapping") and hasattr(generator, "synthesis")
        self.num_styles: int = int(getattr(generator, "num_styles", 1))
        dim = self.latent_dim
        self.register_buffer("gauss_mean", torch.zeros(dim))
        self.register_buffer("gauss_std", torch.ones(dim))
        self.register_buffer("latent_avg", torch.zeros(dim))

    @torch.no_grad()
    def check(self, source: str) -> None:
        """A one-line error unless the weights are finite and a sample has the card's shape and is finite
        (one render: a card that does not match its tensors fails here, before any search)."""
        from ..errors import RestoreError

        bad = next((n for n, t in self.state_dict().items() if t.is_floating_point() and not t.isfinite().all()), None)
        if bad is not None:
            raise RestoreError(f"prior weights are not finite (NaN or inf in {bad})", source=source)
        probe = self.gauss_mean.new_zeros(1, self.latent_dim) if self.latent_dim else None
        try:
            image = self.generate(probe)
        except Exception as err:  # a card whose latent_dim does not fit the generator
            raise RestoreError(f"the generator does not take the card's latent_dim {self.latent_dim} "
                               f"({type(err).__name__}: {' '.join(str(err).split())[:100]})", source=source) from None
        want = (1, self.channels, self.resolution, self.resolution)
        if tuple(image.shape) != want:
            got = tuple(image.shape)
            raise RestoreError(f"the generator renders {got}, not the card's channels {self.channels} and "
                               f"resolution {self.resolution} {want}", source=source)
        if not image.isfinite().all():
            raise RestoreError("the generator renders non-finite values", source=source)

    @property
    def latent_spaces(self) -> tuple[str, ...]:
        return ("z", "w", "w+") if self.style_based else ("z",)

    def latent_radius(self) -> float:
        """Radius of the sphere the latent distribution concentrates on: sqrt(d), or sqrt(d/3) if uniform."""
        return math.sqrt(self.latent_dim / (3.0 if self.latent_distribution == "uniform" else 1.0))

    def sample_latent(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """Draw ``n`` latents ``z`` from the prior's own latent distribution."""
        if self.latent_distribution == "uniform":
            return torch.rand(n, self.latent_dim, generator=generator) * 2 - 1
        return torch.randn(n, self.latent_dim, generator=generator)

    def noise_maps(self) -> list[torch.Tensor]:
        """The generator's fixed noise inputs (empty when it has none)."""
        return list(self.generator.noise_maps()) if hasattr(self.generator, "noise_maps") else []

    def mapping(self, z: torch.Tensor) -> torch.Tensor:
        return self.generator.mapping(z)

    def gaussianise(self, w: torch.Tensor) -> torch.Tensor:
        """PULSE's Gaussianised space: undo the mapping's final leaky ReLU, standardise with the stored fit."""
        v = torch.where(w >= 0, w, w / LRELU_SLOPE) / LRELU_GAIN
        return (v - self.gauss_mean) / self.gauss_std

    def ungaussianise(self, v: torch.Tensor) -> torch.Tensor:
        """Inverse of :meth:`gaussianise`: a Gaussian latent to a ``w``."""
        return torch.nn.functional.leaky_relu(v * self.gauss_std + self.gauss_mean, LRELU_SLOPE) * LRELU_GAIN

    @torch.no_grad()
    def fit_latent_stats(self, n: int = 10000, seed: int = 0) -> None:
        """Fit PULSE's Gaussian to the mapping output (before its last activation); store it and ``latent_avg``."""
        if not self.style_based:
            return
        z = self.sample_latent(n, torch.Generator().manual_seed(seed))
        w = self.mapping(z)
        v = torch.where(w >= 0, w, w / LRELU_SLOPE) / LRELU_GAIN
        self.gauss_mean.copy_(v.mean(0))
        self.gauss_std.copy_(v.std(0).clamp_min(1e-6))
        self.latent_avg.copy_(w.mean(0))

    def generate(
        self, latent: torch.Tensor, space: LatentSpace = "z", noise: list[torch.Tensor] | None = None
    ) -> torch.Tensor:
        """Render latents: ``z`` ``(B, d)``, ``w`` ``(B, d)`` or ``w+`` ``(B, num_styles, d)``."""
        if space not in self.latent_spaces:
            raise ValueError(f"prior {self.name!r} offers latent spaces {self.latent_spaces}, not {space!r}")
        if not self.style_based:
            return self.generator(latent)
        if space == "z":
            latent = self.mapping(latent)
        if latent.ndim == 2:
            latent = latent[:, None].expand(-1, self.num_styles, -1)
        return self.generator.synthesis(latent, noise if noise is not None else self.noise_maps())

    def forward(self, latent: torch.Tensor, space: LatentSpace = "z") -> torch.Tensor:
        return self.generate(latent, space)
