"""A small residual StyleGAN2-style discriminator with equalised learning rate (training only).

Example:
    >>> import torch
    >>> Discriminator(16, {4: 16, 8: 16, 16: 8})(torch.randn(4, 3, 16, 16)).shape
    torch.Size([4, 1])
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

from ..priors.stylegan2 import SQRT2, EqualLinear


def lrelu(x: torch.Tensor) -> torch.Tensor:
    return F.leaky_relu(x, 0.2) * SQRT2


class EqualConv2d(nn.Module):
    def __init__(self, in_ch: int, out_ch: int, kernel: int, bias: bool = True):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_ch, in_ch, kernel, kernel))
        self.bias = nn.Parameter(torch.zeros(out_ch)) if bias else None
        self.scale, self.padding = 1 / math.sqrt(in_ch * kernel**2), kernel // 2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, self.weight * self.scale, self.bias, padding=self.padding)


class DownBlock(nn.Module):
    def __init__(self, in_ch: int, out_ch: int):
        super().__init__()
        self.conv1, self.conv2 = EqualConv2d(in_ch, in_ch, 3), EqualConv2d(in_ch, out_ch, 3)
        self.skip = EqualConv2d(in_ch, out_ch, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        main = F.avg_pool2d(lrelu(self.conv2(lrelu(self.conv1(x)))), 2)
        return (main + self.skip(F.avg_pool2d(x, 2))) / SQRT2


class Discriminator(nn.Module):
    """Residual discriminator from ``size`` down to 4x4, with a minibatch standard-deviation feature."""

    def __init__(self, size: int, channels: dict[int, int], img_channels: int = 3, group: int = 4):
        super().__init__()
        self.from_rgb = EqualConv2d(img_channels, channels[size], 1)
        blocks, res = [], size
        while res > 4:
            blocks.append(DownBlock(channels[res], channels[res // 2]))
            res //= 2
        self.blocks = nn.Sequential(*blocks)
        self.group = group
        self.final_conv = EqualConv2d(channels[4] + 1, channels[4], 3)
        self.fc1 = EqualLinear(channels[4] * 16, channels[4], activation=True)
        self.fc2 = EqualLinear(channels[4], 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.blocks(lrelu(self.from_rgb(x)))
        b, c, h, w = out.shape
        group = min(b, self.group) if b % min(b, self.group) == 0 else 1
        std = out.reshape(group, -1, c, h, w).var(0, unbiased=False).add(1e-8).sqrt().mean((1, 2, 3))
        std = std.reshape(-1, 1, 1, 1).repeat(group, 1, h, w)
        out = lrelu(self.final_conv(torch.cat([out, std], 1)))
        return self.fc2(self.fc1(out.flatten(1)))
