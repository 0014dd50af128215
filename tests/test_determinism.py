"""Same recipe, input, seed, machine and thread count: bit-identical outputs (tiles are batched by their
grid position, never by timing)."""

from __future__ import annotations

import numpy as np

import restore
from tests.conftest import RECIPES


def test_two_runs_are_bit_identical() -> None:
    overrides = ["search.steps=8", "search.restarts=2", "search.refine_steps=4", "search.tile_batch=3"]
    observed = restore.Pipeline.from_yaml(RECIPES / "satellite.yaml", overrides, progress=False).read(None).data
    frame = np.tile(observed, (1, 2, 2))  # 32x32 observed: several tiles in more than one batch
    runs = [restore.Pipeline.from_yaml(RECIPES / "satellite.yaml", overrides, progress=False).run(frame) for _ in range(2)]
    a, b = runs
    assert np.array_equal(a.image, b.image) and np.array_equal(a.std, b.std, equal_nan=True)
    assert a.chi2 == b.chi2 and a.provenance["regions"] == b.provenance["regions"]
    assert len(a.provenance["regions"]) > 3
