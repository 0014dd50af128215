"""The latent search and its presets.

``PRESETS`` are stated once, here, as the values each preset sets; ``default`` is the defaults of
:class:`restore.search.SearchConfig` (it sets nothing). A recipe's explicit keys win over its preset.

Example:
    >>> SearchSpec(preset="fast").resolved()["restarts"]
    2
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field

from .base import OrderedPair, PositiveFloat, Spec

LatentSpace = Literal["z", "w", "w+"]
Schedule = Literal["linear1cycledrop", "linear1cycle", "cosine", "fixed"]
Objective = Literal["nll", "pulse"]

PRESETS: dict[str, dict[str, Any]] = {
    "default": {},
    "fast": {"restarts": 2, "steps": 120, "refine_steps": 50},
    "pulse": {"restarts": 1, "steps": 100, "lr": 0.4, "objective": "pulse", "geocross": 0.05, "noise_maps": True,
              "early_stop": False, "refine_steps": 0},
}
"""What each preset sets on top of :class:`restore.search.SearchConfig`'s defaults."""


class PenaltySpec(Spec):
    """Named, weighted penalty terms added to the data term."""

    geocross: Annotated[float, Field(ge=0)] = 0.0
    latent_norm: Annotated[float, Field(ge=0)] = 0.0


class SearchSpec(Spec):
    """The latent search. ``preset`` fills unset fields: ``default``, ``fast`` or ``pulse``."""

    preset: Literal["default", "fast", "pulse"] = "default"
    latent: LatentSpace | None = None
    restarts: Annotated[int, Field(ge=1)] | None = None
    steps: Annotated[int, Field(ge=1)] | None = None
    lr: PositiveFloat | None = None
    schedule: Schedule | None = None
    objective: Objective | None = None
    penalties: PenaltySpec | None = None
    noise_maps: bool | None = Field(None, description="optimise the generator's noise inputs too")
    early_stop: bool | None = Field(None, description="stop when every restart is data-consistent")
    refine_steps: Annotated[int, Field(ge=0)] | None = Field(
        None, description="second stage: steps of intermediate-layer search after the latent search"
    )
    chi2_range: OrderedPair = (0.8, 1.2)
    tile_batch: Annotated[int, Field(ge=1)] = 8

    def resolved(self) -> dict[str, Any]:
        """The preset's values with this spec's explicit ones on top (keys of ``SearchConfig``)."""
        values = dict(PRESETS[self.preset])
        for key in ("latent", "restarts", "steps", "lr", "schedule", "objective", "noise_maps", "early_stop",
                    "refine_steps"):
            if getattr(self, key) is not None:
                values[key] = getattr(self, key)
        if self.penalties is not None:
            values["geocross"], values["latent_norm"] = self.penalties.geocross, self.penalties.latent_norm
        values["chi2_range"] = tuple(self.chi2_range)
        return values
