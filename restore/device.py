"""Where tensors live: one check, so that a device that is not there is a one-line error.

Example:
    >>> resolve_device("cpu")
    device(type='cpu')
"""

from __future__ import annotations

import torch

from .errors import RestoreError


def resolve_device(device: str | torch.device) -> torch.device:
    """``device`` as a :class:`torch.device`, checked by allocating on it; a bad name or a missing
    accelerator raises :class:`RestoreError` naming it."""
    try:
        dev = torch.device(device)
        torch.empty(1, device=dev)
    except (RuntimeError, AssertionError) as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise RestoreError(f"device {str(device)!r} is not available ({first})") from None
    return dev
