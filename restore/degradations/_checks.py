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


def check_choice(value: object, choices: tuple, name: str) -> None:
    """Raise a clear ``ValueError`` unless ``value`` is one of ``choices``."""
    if value not in choices:
        raise ValueError(f"{name} must be one of {choices}, got {value!r}")


def check_factor(factor: object) -> None:
    """Raise a clear ``ValueError`` unless ``factor`` is a positive integer."""
    if not isinstance(factor, int) or isinstance(factor, bool) or factor < 1:
        raise ValueError(f"factor must be a positive integer, got {factor!r}")


def check_divisible(x: torch.Tensor, factor: int) -> None:
    """Raise a clear ``ValueError`` unless both sides of ``x`` are multiples of ``factor``."""
    h, w = x.shape[-2:]
    if h % factor or w % factor:
        raise ValueError(f"image size {h}x{w} is not divisible by the factor {factor}")
