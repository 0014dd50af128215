"""How a frame is cut for the prior: tiles of the prior's field, or detected objects.

Example:
    >>> ObjectsLayoutSpec(kind="objects").max_objects
    20
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from .base import PositiveFloat, Spec


class TilesLayoutSpec(Spec):
    """Frames larger than the prior's field are cut into overlapping tiles (priors of whole fields)."""

    kind: Literal["tiles"] = "tiles"


class ObjectsLayoutSpec(Spec):
    """The domain adapter detects objects; each is restored in the prior's framing and pasted back
    (priors of centred objects: faces, galaxy cutouts) over the classical restoration of the frame."""

    kind: Literal["objects"]
    max_objects: Annotated[int, Field(ge=1)] = 20
    threshold: PositiveFloat = Field(5.0, description="detection threshold (astronomy: in noise standard deviations)")
    feather: Annotated[float, Field(gt=0, le=0.5)] = Field(0.125, description="blended edge, fraction of the cutout")
    local_background: bool = Field(False, description="take each cutout's local background (the median of its "
                                                       "border) out for the search and put it back (sky pedestals)")
    points: bool = Field(False, description="fit each object as a point source of the forward model first; "
                                            "where the chi-square test accepts it, it is restored as a point, "
                                            "not by the prior (stars)")


LayoutSpec = Annotated[TilesLayoutSpec | ObjectsLayoutSpec, Field(discriminator="kind")]
