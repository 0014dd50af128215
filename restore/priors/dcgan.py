"""A DCGAN-style generator (Radford et al. 2016): ``z`` ``(B, latent_dim)`` -> image in [-1, 1].

Example:
    >>> import torch
    >>> DCGANGenerator(latent_dim=16, size=32, width=8)(torch.randn(2, 16)).shape
    torch.Size([2, 3, 32, 32])
"""

from __future__ import annotations

import math

import torch
from torch import nn


class DCGANGenerator(nn.Module):
    """Transposed-convolution generator from a 4x4 seed up to ``size`` (a power of two >= 8)."""

    def __init__(self, latent_dim: int = 100, size: int = 64, width: int = 64, img_channels: int = 3):
        super().__init__()
        steps = int(math.log2(size)) - 2
        if 2 ** (steps + 2) != size or steps < 1:
            raise ValueError(f"size must be a power of two >= 8, got {size}")
        self.latent_dim, self.size, self.width, self.img_channels = latent_dim, size, width, img_channels
        ch = width * 2 ** (steps - 1)
        layers: list[nn.Module] = [nn.ConvTranspose2d(latent_dim, ch, 4, 1, 0, bias=False), nn.BatchNorm2d(ch), nn.ReLU(True)]
        for _ in range(steps - 1):
            layers += [nn.ConvTranspose2d(ch, ch // 2, 4, 2, 1, bias=False), nn.BatchNorm2d(ch // 2), nn.ReLU(True)]
            ch //= 2
        layers += [nn.ConvTranspose2d(ch, img_channels, 4, 2, 1, bias=False), nn.Tanh()]
        self.net = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z.reshape(z.shape[0], -1, 1, 1))
