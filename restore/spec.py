"""Pydantic models of a recipe: one model per concept, pluggable parts as unions on ``kind``.

A recipe is a YAML file; :func:`load_recipe` reads it, applies ``--set`` overrides, resolves
relative paths from the recipe's folder and validates it. Every problem is reported in one line
naming the file, the key path and what is wrong.

Example:
    >>> spec = PipelineSpec.model_validate({
    ...     "domain": {"kind": "faces"},
    ...     "forward": [{"kind": "downsample", "factor": 4}],
    ...     "noise": {"kind": "gaussian", "sigma": 2.0},
    ...     "prior": {"kind": "builtin", "name": "faces"},
    ... })
    >>> spec.forward[0].method
    'bicubic'
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from .errors import RestoreError

PositiveFloat = Annotated[float, Field(gt=0)]
OddSize = Annotated[int, Field(ge=1)]


class Spec(BaseModel):
    """Base of every spec: unknown keys are errors, values are checked on assignment too."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)


def _resolve_path(value: Path, info: ValidationInfo) -> Path:
    base = (info.context or {}).get("base_dir")
    path = Path(value).expanduser()
    if base is not None and not path.is_absolute():
        path = Path(base) / path
    return path


def _existing_file(value: Path, info: ValidationInfo) -> Path:
    path = _resolve_path(value, info)
    if not path.is_file():
        raise ValueError(f"file not found: {path}")
    return path


# ----------------------------------------------------------------------------- PSFs
class _PsfBase(Spec):
    size: OddSize | None = Field(None, description="kernel size in pixels (odd); default holds >= 99.5% of the energy")
    unit: Literal["pixel", "arcsec", "um"] = Field("pixel", description="unit of the widths given")
    pixel_scale: PositiveFloat | None = Field(None, description="units per sharp-grid pixel when unit is not 'pixel'")

    @field_validator("size")
    @classmethod
    def _odd(cls, v: int | None) -> int | None:
        if v is not None and v % 2 == 0:
            raise ValueError("must be odd")
        return v

    @model_validator(mode="after")
    def _scale_given(self) -> "_PsfBase":
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
    beta: Annotated[float, Field(gt=1)] = 3.5


class AiryPsfSpec(_PsfBase):
    """Airy pattern: give ``radius`` (first dark ring), or ``wavelength`` and ``aperture`` (metres)
    with ``unit: arcsec`` and ``pixel_scale`` (arcsec per sharp pixel)."""

    kind: Literal["airy"] = "airy"
    radius: PositiveFloat | None = None
    wavelength: PositiveFloat | None = None
    aperture: PositiveFloat | None = None
    obstruction: Annotated[float, Field(ge=0, lt=1)] = 0.0

    @model_validator(mode="after")
    def _radius_or_optics(self) -> "AiryPsfSpec":
        optics = self.wavelength is not None and self.aperture is not None
        if (self.radius is None) == (not optics):
            raise ValueError("give either radius, or wavelength and aperture (not both)")
        if optics and self.unit != "arcsec":
            raise ValueError("wavelength/aperture need unit: arcsec and pixel_scale (arcsec per pixel)")
        return self


class MotionPsfSpec(_PsfBase):
    kind: Literal["motion"] = "motion"
    length: PositiveFloat
    angle: float = Field(0.0, description="degrees counter-clockwise from +x")


class FilePsfSpec(Spec):
    kind: Literal["file"] = "file"
    path: Path
    hdu: Annotated[int, Field(ge=0)] | None = None

    @field_validator("path")
    @classmethod
    def _exists(cls, v: Path, info: ValidationInfo) -> Path:
        return _existing_file(v, info)


PsfSpec = Annotated[
    GaussianPsfSpec | MoffatPsfSpec | AiryPsfSpec | MotionPsfSpec | FilePsfSpec, Field(discriminator="kind")
]


# ----------------------------------------------------------------------------- forward operators
Border = Literal["reflect", "constant", "replicate", "circular"]


class PsfOpSpec(Spec):
    """Convolution with a point-spread function on the sharp grid."""

    kind: Literal["psf"] = "psf"
    psf: PsfSpec
    border: Border = "reflect"


class DownsampleOpSpec(Spec):
    """Integer downsampling: PULSE-compatible ``bicubic``, or area binning ``sum`` (flux) / ``mean``."""

    kind: Literal["downsample"] = "downsample"
    factor: Annotated[int, Field(ge=1)]
    method: Literal["bicubic", "sum", "mean"] = "bicubic"
    border: Border = "reflect"


OperatorSpec = Annotated[PsfOpSpec | DownsampleOpSpec, Field(discriminator="kind")]


# ----------------------------------------------------------------------------- noise
FromHeader = Literal["from_header"]


class GaussianNoiseSpec(Spec):
    kind: Literal["gaussian"] = "gaussian"
    sigma: PositiveFloat | FromHeader = Field(description="standard deviation in data units")


class PoissonNoiseSpec(Spec):
    kind: Literal["poisson"] = "poisson"
    gain: PositiveFloat | FromHeader = Field(1.0, description="electrons per data unit")
    sky: Annotated[float, Field(ge=0)] | Literal["from_header", "estimate"] = 0.0


class PoissonGaussianNoiseSpec(Spec):
    kind: Literal["poisson_gaussian"] = "poisson_gaussian"
    gain: PositiveFloat | FromHeader = Field(1.0, description="electrons per data unit")
    read_noise: Annotated[float, Field(ge=0)] | FromHeader = Field(0.0, description="electrons")
    sky: Annotated[float, Field(ge=0)] | Literal["from_header", "estimate"] = 0.0


NoiseSpec = Annotated[
    GaussianNoiseSpec | PoissonNoiseSpec | PoissonGaussianNoiseSpec, Field(discriminator="kind")
]


# ----------------------------------------------------------------------------- domain
class FacesDomainSpec(Spec):
    """Photographs (PNG/JPEG/WebP) normalised linearly from 0..255 to the prior's [-1, 1]."""

    kind: Literal["faces"] = "faces"


class ImageDomainSpec(Spec):
    """Any 8/16-bit or float image, normalised linearly from ``[low, high]`` to [-1, 1]."""

    kind: Literal["image"] = "image"
    low: float = 0.0
    high: float = 255.0

    @model_validator(mode="after")
    def _ordered(self) -> "ImageDomainSpec":
        if self.high <= self.low:
            raise ValueError("high must be > low")
        return self


class AsinhStretchSpec(Spec):
    """``v = asinh(x / softening) / asinh(white / softening)``, then ``[0, 1] -> [-1, 1]``; exactly invertible."""

    kind: Literal["asinh"] = "asinh"
    softening: PositiveFloat = Field(1.0, description="data units where the stretch turns from linear to log")
    white: PositiveFloat = Field(1000.0, description="data value mapped to the top of the prior's range")


class AstronomyDomainSpec(Spec):
    """FITS images (astropy): HDU choice, BSCALE/BZERO/BLANK, NaN/saturation masks, header noise, WCS."""

    kind: Literal["astronomy"] = "astronomy"
    hdu: Annotated[int, Field(ge=0)] | None = Field(None, description="image HDU (default: first with 2-D data)")
    stretch: AsinhStretchSpec = Field(default_factory=AsinhStretchSpec)
    saturation: PositiveFloat | None = Field(None, description="saturation level (default: SATURATE keyword)")


class MicroscopyDomainSpec(Spec):
    """TIFF / OME-TIFF / ImageJ stacks (tifffile), percentile normalisation per plane, pixel size kept."""

    kind: Literal["microscopy"] = "microscopy"
    percentiles: tuple[float, float] = (0.1, 99.9)

    @field_validator("percentiles")
    @classmethod
    def _range(cls, v: tuple[float, float]) -> tuple[float, float]:
        if not 0 <= v[0] < v[1] <= 100:
            raise ValueError("must be (low, high) with 0 <= low < high <= 100")
        return v


class SatelliteDomainSpec(Spec):
    """GeoTIFF scenes (tifffile): bands, nodata mask, georeferencing kept; linear ``[low, high]`` scaling."""

    kind: Literal["satellite"] = "satellite"
    low: float = 0.0
    high: float | None = Field(None, description="default: the dtype's maximum (255, 65535) or 1.0 for floats")
    nodata: float | None = Field(None, description="default: the GDAL_NODATA tag")


class PluginDomainSpec(BaseModel):
    """A domain adapter from another package (entry-point group ``restore.domains``); other keys are its options."""

    model_config = ConfigDict(extra="allow")
    kind: str

    @field_validator("kind")
    @classmethod
    def _registered(cls, v: str) -> str:
        from .domains.base import adapter_classes

        known = adapter_classes()
        if v not in known:
            raise ValueError(f"unknown domain kind {v!r} (available: {', '.join(sorted(known))})")
        return v


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


# ----------------------------------------------------------------------------- prior
class BuiltinPriorSpec(Spec):
    kind: Literal["builtin"] = "builtin"
    name: str


class FilePriorSpec(Spec):
    kind: Literal["file"] = "file"
    path: Path

    @field_validator("path")
    @classmethod
    def _exists(cls, v: Path, info: ValidationInfo) -> Path:
        return _existing_file(v, info)


class ModulePriorSpec(Spec):
    """A user generator: ``factory`` is ``package.module:function`` returning an ``nn.Module``."""

    kind: Literal["module"] = "module"
    factory: Annotated[str, Field(pattern=r"^[\w.]+:\w+$")]
    weights: Path | None = None
    latent_dim: Annotated[int, Field(ge=1)]
    resolution: Annotated[int, Field(ge=1)]
    channels: Annotated[int, Field(ge=1)] = 3
    latent_distribution: Literal["normal", "uniform"] = "normal"

    @field_validator("weights")
    @classmethod
    def _exists(cls, v: Path | None, info: ValidationInfo) -> Path | None:
        return None if v is None else _existing_file(v, info)


PriorSpec = Annotated[BuiltinPriorSpec | FilePriorSpec | ModulePriorSpec, Field(discriminator="kind")]


# ----------------------------------------------------------------------------- search
class PenaltySpec(Spec):
    """Named, weighted penalty terms added to the data term."""

    geocross: Annotated[float, Field(ge=0)] = 0.0
    latent_norm: Annotated[float, Field(ge=0)] = 0.0


class SearchSpec(Spec):
    """The latent search. ``preset`` fills unset fields: ``default``, ``fast`` or ``pulse``."""

    preset: Literal["default", "fast", "pulse"] = "default"
    latent: Literal["z", "w", "w+"] | None = None
    restarts: Annotated[int, Field(ge=1)] | None = None
    steps: Annotated[int, Field(ge=1)] | None = None
    lr: PositiveFloat | None = None
    schedule: Literal["linear1cycledrop", "linear1cycle", "cosine", "fixed"] | None = None
    objective: Literal["nll", "pulse"] | None = None
    penalties: PenaltySpec | None = None
    noise_maps: bool | None = Field(None, description="optimise the generator's noise inputs too")
    early_stop: bool | None = Field(None, description="stop when every restart is data-consistent")
    refine_steps: Annotated[int, Field(ge=0)] | None = Field(
        None, description="second stage: steps of intermediate-layer search after the latent search"
    )
    chi2_range: tuple[PositiveFloat, PositiveFloat] = (0.8, 1.2)
    tile_batch: Annotated[int, Field(ge=1)] = 8

    @field_validator("chi2_range")
    @classmethod
    def _ordered(cls, v: tuple[float, float]) -> tuple[float, float]:
        if v[0] >= v[1]:
            raise ValueError("must be (low, high) with low < high")
        return v


class TilesLayoutSpec(Spec):
    """Frames larger than the prior's field are cut into overlapping tiles (priors of whole fields)."""

    kind: Literal["tiles"] = "tiles"


class ObjectsLayoutSpec(Spec):
    """The domain adapter detects objects; each is restored in the prior's framing and pasted back
    (priors of centred objects: faces, galaxy cutouts). An observation of exactly the prior's field
    is taken as one aligned cutout."""

    kind: Literal["objects"]
    max_objects: Annotated[int, Field(ge=1)] = 20
    threshold: PositiveFloat = Field(5.0, description="detection threshold (astronomy: in noise standard deviations)")
    feather: Annotated[float, Field(gt=0, le=0.5)] = Field(0.125, description="blended edge, fraction of the cutout")


LayoutSpec = Annotated[TilesLayoutSpec | ObjectsLayoutSpec, Field(discriminator="kind")]


class OutputSpec(Spec):
    dir: Path = Path("restored")
    overwrite: bool = False
    figures: bool = True

    @field_validator("dir")
    @classmethod
    def _resolve(cls, v: Path, info: ValidationInfo) -> Path:
        return _resolve_path(v, info)


# ----------------------------------------------------------------------------- recipe
class PipelineSpec(Spec):
    """A whole recipe: how the observation was made, which prior explains it, how to search."""

    version: Literal[1] = 1
    input: Path | None = Field(None, description="default input file, relative to the recipe")
    domain: DomainSpec = Field(default_factory=ImageDomainSpec)
    forward: list[OperatorSpec] = Field(min_length=1)
    noise: NoiseSpec
    prior: PriorSpec
    search: SearchSpec = Field(default_factory=SearchSpec)
    layout: LayoutSpec = Field(default_factory=TilesLayoutSpec)
    output: OutputSpec = Field(default_factory=OutputSpec)
    seed: Annotated[int, Field(ge=0)] = 0

    @field_validator("input")
    @classmethod
    def _input_exists(cls, v: Path | None, info: ValidationInfo) -> Path | None:
        return None if v is None else _existing_file(v, info)

    def factor(self) -> int:
        """Total downsampling factor of the forward model (sharp pixels per observed pixel)."""
        total = 1
        for op in self.forward:
            if isinstance(op, DownsampleOpSpec):
                total *= op.factor
        return total

    def to_yaml(self) -> str:
        """The recipe as YAML (paths absolute); ``load_recipe`` reads it back to an equal spec."""
        return yaml.safe_dump(self.model_dump(mode="json"), sort_keys=False)


# ----------------------------------------------------------------------------- loading
_ABSENT = object()


def _key_path(loc: tuple[Any, ...], data: Any) -> str:
    """Dotted key path of an error location, without the union tags pydantic inserts."""
    keys: list[str] = []
    node, tag_done = data, False
    for part in loc:
        if isinstance(node, dict) and not tag_done and part in (node.get("kind"), "plugin"):
            tag_done = True  # discriminator tag pydantic inserts before a union member's fields
            continue
        tag_done = False
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, list) and isinstance(part, int) and part < len(node):
            node = node[part]
        elif isinstance(node, dict) or node is _ABSENT:
            node = _ABSENT  # a key the input lacks (missing) or has in error
        else:
            continue  # label of a plain union member (float | 'from_header') under a scalar value
        keys.append(str(part))
    return ".".join(keys) or "<recipe>"


def _format_error(err: ValidationError, source: str | Path, data: Any) -> RestoreError:
    parts = []
    for e in err.errors():
        msg = e["msg"].removeprefix("Value error, ")
        if e["type"] == "extra_forbidden":
            msg = "unknown key"
        elif e["type"] == "missing":
            msg = "required key missing"
        elif msg.startswith("Input should be "):
            msg = "must be " + msg.removeprefix("Input should be ")
        parts.append((_key_path(e["loc"], data), msg))
    unique = [f"{key}: {msg}" for key, msg in dict(reversed(parts)).items()][::-1]
    more = f" (and {len(unique) - 1} more)" if len(unique) > 1 else ""
    return RestoreError(unique[0] + more, source=source)


def parse_override(item: str) -> tuple[list[str], Any]:
    """Split ``a.b.0.c=value`` into its key path and the value parsed as a YAML scalar."""
    key, sep, raw = item.partition("=")
    if not sep or not key.strip():
        raise RestoreError(f"override {item!r} must look like key.path=value")
    return key.strip().split("."), yaml.safe_load(raw) if raw.strip() else None


def apply_overrides(data: dict[str, Any], overrides: list[str], source: str | Path) -> dict[str, Any]:
    """Set ``key.path=value`` items in a raw recipe dict (list items by index)."""
    for item in overrides:
        keys, value = parse_override(item)
        node: Any = data
        for depth, key in enumerate(keys):
            last = depth == len(keys) - 1
            where = ".".join(keys[: depth + 1])
            if isinstance(node, list):
                if not key.isdigit() or int(key) >= len(node):
                    raise RestoreError(f"no list item {key} (list has {len(node)})", source=source, where=where)
                if last:
                    node[int(key)] = value
                else:
                    node = node[int(key)]
            elif isinstance(node, dict):
                if last:
                    node[key] = value
                else:
                    node = node.setdefault(key, {})
            else:
                raise RestoreError("cannot set a key inside a scalar value", source=source, where=where)
    return data


def validate_recipe(
    data: Any, source: str | Path = "<recipe>", base_dir: str | Path | None = None
) -> PipelineSpec:
    """Validate a raw recipe dict; paths resolve from ``base_dir``; errors become one-line ``RestoreError``."""
    if not isinstance(data, dict):
        raise RestoreError("a recipe must be a YAML mapping", source=source)
    try:
        return PipelineSpec.model_validate(data, context={"base_dir": base_dir})
    except ValidationError as err:
        raise _format_error(err, source, data) from None


def load_recipe(path: str | Path, overrides: list[str] | None = None) -> PipelineSpec:
    """Read, override and validate a YAML recipe.

    Example:
        >>> import restore, pathlib
        >>> spec = restore.load_recipe(pathlib.Path(restore.__file__).parents[1] / "recipes" / "faces.yaml")
        >>> spec.domain.kind
        'faces'
    """
    path = Path(path)
    if not path.is_file():
        raise RestoreError("recipe not found", source=path)
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f"line {mark.line + 1}" if mark is not None else None
        raise RestoreError(f"invalid YAML ({getattr(err, 'problem', err)})", source=path, where=where) from None
    data = apply_overrides(data if data is not None else {}, overrides or [], path)
    return validate_recipe(data, source=path, base_dir=path.parent)
