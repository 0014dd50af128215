"""Domain adapters: reading, normalising and writing each kind of scientific or photographic file."""

from .astronomy import AstronomyAdapter
from .base import DomainAdapter, Linear, LinearAdapter, Observation, adapter_classes, get_adapter
from .faces import FacesAdapter
from .microscopy import MicroscopyAdapter
from .satellite import SatelliteAdapter

__all__ = [
    "AstronomyAdapter", "DomainAdapter", "FacesAdapter", "Linear", "LinearAdapter", "MicroscopyAdapter",
    "Observation", "SatelliteAdapter", "adapter_classes", "get_adapter",
]  # fmt: skip
