"""Point-spread functions on the sharp grid: Gaussian, Moffat, Airy, motion, or a kernel from a file.

Example:
    >>> round(GaussianPsfSpec(fwhm=0.3, unit="arcsec", pixel_scale=0.1).to_pixels(0.3), 6)
    3.0
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, model_validator

from .base import ExistingFile, OddSize, PositiveFloat, Spec


class _PsfBase(Spec):
    size: OddSize | None = Field(None, description="kernel size in pixels (odd); default holds >= 99.5% of the energy")
    unit: Literal["pixel", "arcsec", "um"] = Field("pixel", description="unit of the widths given")
    pixel_scale: PositiveFloat | None = Field(None, description="units per sharp-grid pixel when unit is not 'pixel'")

    @model_validator(mode="after")
    def _scale_given(self) -> _PsfBase:
        if self.unit != "pixel" and self.pixel_scale is None:
            raise ValueError(f"pixel_scale is required when unit is '{self.unit}'")
        return self

    def to_pixels(self, value: float) -> float:
        """A width in this spec's unit, in sharp-grid pixels."""
        return value if self.unit == "pixel" else value / float(self.pixel_scale)  # type: ignore[arg-type]


class GaussianPsfSpec(_PsfBase):
    kind: Literal["gaussian"] = "gaussian"
    fwhm: PositiveFloat


class MoffatPsfSpec(_PsfBase):
    kind: Literal["moffat"] = "moffat"
    fwhm: PositiveFloat
    beta: Annotated[float, Field(gt=1, allow_inf_nan=False)] = 3.5


class AiryPsfSpec(_PsfBase):
    """Airy pattern: give ``radius`` (first dark ring), or ``wavelength`` and ``aperture`` (metres)
    with ``unit: arcsec`` and ``pixel_scale`` (arcsec per sharp pixel)."""

    kind: Literal["airy"] = "airy"
    radius: PositiveFloat | None = None
    wavelength: PositiveFloat | None = None
    aperture: PositiveFloat | None = None
    obstruction: Annotated[float, Field(ge=0, lt=1)] = 0.0

    @model_validator(mode="after")
    def _radius_or_optics(self) -> AiryPsfSpec:
        optics = self.wavelength is not None and self.aperture is not None
        if (self.radius is None) == (not optics):
            raise ValueError("give either radius, or wavelength and aperture (not both)")
        if optics and self.unit != "arcsec":
            raise ValueError("wavelength/aperture need unit: arcsec and pixel_scale (arcsec per pixel)")
        return self


class MotionPsfSpec(_PsfBase):
    kind: Literal["motion"] = "motion"
    length: PositiveFloat
    angle: float = Field(0.0, description="degrees counter-clockwise from +x", allow_inf_nan=False)


class FilePsfSpec(Spec):
    kind: Literal["file"] = "file"
    path: ExistingFile
    hdu: Annotated[int, Field(ge=0)] | None = None


PsfSpec = Annotated[
    GaussianPsfSpec | MoffatPsfSpec | AiryPsfSpec | MotionPsfSpec | FilePsfSpec, Field(discriminator="kind")
]
