"""Pydantic models of a recipe, one concept per module; pluggable parts are unions on ``kind``.

A recipe is a YAML file; :func:`load_recipe` reads it, applies ``--set`` overrides, resolves
relative paths from the recipe's folder and validates it. Every problem is reported in one line
naming the file, the key path and what is wrong. Training configs load the same way
(:func:`load_train_spec`).
"""

from .base import ExistingFile, NonNegativeFloat, OddSize, OrderedPair, PositiveFloat, RelativePath, Spec
from .consistency import ConsistencySpec
from .domain import (
    BUILTIN_DOMAINS,
    AsinhStretchSpec,
    AstronomyDomainSpec,
    DomainSpec,
    FacesDomainSpec,
    ImageDomainSpec,
    MicroscopyDomainSpec,
    PluginDomainSpec,
    SatelliteDomainSpec,
)
from .forward import Border, DownsampleMethod, DownsampleOpSpec, OperatorSpec, PsfOpSpec
from .layout import LayoutSpec, ObjectsLayoutSpec, TilesLayoutSpec
from .load import apply_overrides, load, load_recipe, load_train_spec, parse_override, validate, validate_recipe
from .noise import Estimate, FromHeader, GaussianNoiseSpec, NoiseSpec, PoissonGaussianNoiseSpec, PoissonNoiseSpec
from .pipeline import OutputSpec, PipelineSpec
from .prior import BuiltinPriorSpec, FilePriorSpec, LatentDistribution, ModulePriorSpec, PriorSpec
from .psf import AiryPsfSpec, FilePsfSpec, GaussianPsfSpec, MoffatPsfSpec, MotionPsfSpec, PsfSpec
from .search import PRESETS, LatentSpace, Objective, PenaltySpec, Schedule, SearchSpec
from .train import AugmentSpec, GeneratorSpec, TrainSpec

__all__ = [
    "BUILTIN_DOMAINS", "PRESETS", "AiryPsfSpec", "AsinhStretchSpec", "AstronomyDomainSpec", "AugmentSpec", "Border",
    "BuiltinPriorSpec", "ConsistencySpec", "DomainSpec", "DownsampleMethod", "DownsampleOpSpec", "Estimate",
    "ExistingFile", "FacesDomainSpec", "FilePriorSpec", "FilePsfSpec", "FromHeader", "GaussianNoiseSpec",
    "GaussianPsfSpec", "GeneratorSpec", "ImageDomainSpec", "LatentDistribution", "LatentSpace", "LayoutSpec",
    "MicroscopyDomainSpec", "ModulePriorSpec", "MoffatPsfSpec", "MotionPsfSpec", "NoiseSpec", "NonNegativeFloat",
    "ObjectsLayoutSpec", "Objective", "OddSize", "OperatorSpec", "OrderedPair", "OutputSpec", "PenaltySpec",
    "PipelineSpec", "PluginDomainSpec", "PoissonGaussianNoiseSpec", "PoissonNoiseSpec", "PositiveFloat", "PriorSpec",
    "PsfOpSpec", "PsfSpec", "RelativePath", "SatelliteDomainSpec", "Schedule", "SearchSpec", "Spec", "TilesLayoutSpec",
    "TrainSpec", "apply_overrides", "load", "load_recipe", "load_train_spec", "parse_override", "validate",
    "validate_recipe",
]
