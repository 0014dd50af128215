"""Shared fixtures: small tensors, a tiny random StyleGAN2 prior, temporary recipes."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

torch.set_num_threads(int(os.environ.get("RESTORE_TEST_THREADS", min(2, os.cpu_count() or 1))))  # 1 beside a training run

ROOT = Path(__file__).resolve().parents[1]
RECIPES = ROOT / "recipes"


#: where the device tests run: the CPU always, an accelerator where one is present
DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


@pytest.fixture(params=DEVICES)
def device(request) -> torch.device:
    return torch.device(request.param)


@pytest.fixture
def rng() -> torch.Generator:
    return torch.Generator().manual_seed(1234)
