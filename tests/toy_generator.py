"""A user generator importable as ``tests.toy_generator:make`` (used by the module-prior test)."""

from __future__ import annotations

import torch
from torch import nn


class Toy(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.linear = nn.Linear(8, 3 * 16 * 16)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.linear(z)).reshape(-1, 3, 16, 16)


def make() -> nn.Module:
    torch.manual_seed(0)
    return Toy()
