"""Domain adapters: reading, normalising and writing each kind of scientific or photographic file."""

from .astronomy import Asinh, AstronomyAdapter
from .base import (
                   DomainAdapter,
                   LinearAdapter,
                   LinearScale,
                   Normalisation,
                   Observation,
                   check_observation,
                   percentile_scale,
)
from .faces import FacesAdapter
from .microscopy import MicroscopyAdapter
from .registry import BUILTIN_ADAPTERS, adapter_classes, get_adapter
from .satellite import SatelliteAdapter

__all__ = [
    "BUILTIN_ADAPTERS", "Asinh", "AstronomyAdapter", "DomainAdapter", "FacesAdapter", "LinearAdapter", "LinearScale",
    "MicroscopyAdapter", "Normalisation", "Observation", "SatelliteAdapter", "adapter_classes", "check_observation",
    "get_adapter", "percentile_scale",
]
