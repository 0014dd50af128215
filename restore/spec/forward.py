"""Forward operators of a recipe, applied in order on the sharp grid.

``Border`` and ``DownsampleMethod`` are stated here once; the operators read their allowed values
with ``typing.get_args``.

Example:
    >>> DownsampleOpSpec(factor=4).method
    'bicubic'
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from .base import Spec
from .psf import PsfSpec

Border = Literal["reflect", "constant", "replicate", "circular"]
DownsampleMethod = Literal["bicubic", "sum", "mean"]


class PsfOpSpec(Spec):
    """Convolution with a point-spread function on the sharp grid."""

    kind: Literal["psf"] = "psf"
    psf: PsfSpec
    border: Border = "reflect"


class DownsampleOpSpec(Spec):
    """Integer downsampling: PULSE-compatible ``bicubic``, or area binning ``sum`` (flux) / ``mean``."""

    kind: Literal["downsample"] = "downsample"
    factor: Annotated[int, Field(ge=1)]
    method: DownsampleMethod = "bicubic"
    border: Border = "reflect"


OperatorSpec = Annotated[PsfOpSpec | DownsampleOpSpec, Field(discriminator="kind")]
