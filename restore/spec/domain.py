"""Domains: how files are read, and normalised to the prior's range and back.

Built-in domains have their own models; any other ``kind`` is a plug-in adapter's, whose options the
adapter validates itself (its ``spec_class``), when it is looked up.

Example:
    >>> SatelliteDomainSpec().percentiles
    (0.5, 99.5)
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Discriminator, Field, Tag, model_validator

from .base import OrderedPair, PositiveFloat, Spec


def _percentiles(value: tuple[float, float]) -> tuple[float, float]:
    if not 0 <= value[0] < value[1] <= 100:
        raise ValueError("must be (low, high) with 0 <= low < high <= 100")
    return value


Percentiles = Annotated[OrderedPair, AfterValidator(_percentiles)]
"""``(low, high)`` percentiles, ``0 <= low < high <= 100``."""


class _Range(Spec):
    """A linear ``[low, high] -> [-1, 1]`` scaling; unset bounds come from robust percentiles of the valid pixels."""

    low: float | None = Field(None, allow_inf_nan=False, description="data value mapped to -1 (default: percentile)")
    high: float | None = Field(None, allow_inf_nan=False, description="data value mapped to +1 (default: percentile)")
    percentiles: Percentiles = Field((0.5, 99.5), description="percentiles of the valid pixels for unset bounds")

    @model_validator(mode="after")
    def _check(self) -> _Range:
        if self.low is not None and self.high is not None and self.high <= self.low:
            raise ValueError("high must be > low")
        return self


class FacesDomainSpec(Spec):
    """Photographs (PNG/JPEG/WebP) normalised linearly from 0..255 to the prior's [-1, 1]."""

    kind: Literal["faces"] = "faces"


class ImageDomainSpec(_Range):
    """Any 8/16-bit or float image, normalised linearly from ``[low, high]`` to [-1, 1]."""

    kind: Literal["image"] = "image"


class AsinhStretchSpec(Spec):
    """``v = asinh(x / softening) / asinh(white / softening)``, then ``[0, 1] -> [-1, 1]``; exactly invertible.
    Unset values follow the data: ``softening`` the noise level, ``white`` a robust maximum."""

    kind: Literal["asinh"] = "asinh"
    softening: PositiveFloat | None = Field(None, description="data units where the stretch turns linear to log")
    white: PositiveFloat | None = Field(None, description="data value mapped to the top of the prior's range")


class AstronomyDomainSpec(Spec):
    """FITS images (astropy): HDU choice, BSCALE/BZERO/BLANK, NaN/saturation masks, header noise, WCS."""

    kind: Literal["astronomy"] = "astronomy"
    hdu: Annotated[int, Field(ge=0)] | None = Field(None, description="image HDU (default: first with 2-D data)")
    stretch: AsinhStretchSpec = Field(default_factory=AsinhStretchSpec)
    saturation: PositiveFloat | None = Field(None, description="saturation level (default: SATURATE keyword)")


class MicroscopyDomainSpec(Spec):
    """TIFF / OME-TIFF / ImageJ stacks (tifffile), percentile normalisation per plane, pixel size kept."""

    kind: Literal["microscopy"] = "microscopy"
    percentiles: Percentiles = (0.1, 99.9)


class SatelliteDomainSpec(_Range):
    """GeoTIFF scenes (tifffile): bands, nodata mask, georeferencing kept; linear ``[low, high]`` scaling
    (default: robust percentiles of each band's valid pixels)."""

    kind: Literal["satellite"] = "satellite"
    nodata: float | None = Field(None, description="default: the GDAL_NODATA tag")


class PluginDomainSpec(BaseModel):
    """A domain adapter from another package (entry-point group ``restore.domains``); other keys are its options."""

    model_config = ConfigDict(extra="allow")
    kind: str

    def options(self) -> dict[str, Any]:
        """The adapter's options (every key but ``kind``)."""
        return dict(self.model_extra or {})


BUILTIN_DOMAINS = ("faces", "image", "astronomy", "microscopy", "satellite")


def _domain_tag(value: Any) -> str:
    kind = value.get("kind") if isinstance(value, dict) else getattr(value, "kind", None)
    return kind if kind in BUILTIN_DOMAINS else "plugin"


DomainSpec = Annotated[
    Annotated[FacesDomainSpec, Tag("faces")]
    | Annotated[ImageDomainSpec, Tag("image")]
    | Annotated[AstronomyDomainSpec, Tag("astronomy")]
    | Annotated[MicroscopyDomainSpec, Tag("microscopy")]
    | Annotated[SatelliteDomainSpec, Tag("satellite")]
    | Annotated[PluginDomainSpec, Tag("plugin")],
    Discriminator(_domain_tag),
]
