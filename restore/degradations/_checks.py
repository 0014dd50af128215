"""Shape checks shared by the forward operators."""

from __future__ import annotations

import torch


def check_bchw(x: torch.Tensor, name: str = "input") -> None:
    """Raise a clear ``ValueError`` unless ``x`` is a floating tensor of shape ``(B, C, H, W)``."""
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if x.ndim != 4:
        raise ValueError(f"{name} must have shape (B, C, H, W), got {tuple(x.shape)}")
    if not x.is_floating_point():
        raise TypeError(f"{name} must be a floating tensor, got {x.dtype}")
