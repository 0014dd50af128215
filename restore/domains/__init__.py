"""Domain adapters: reading, normalising and writing each kind of scientific or photographic file."""

from .base import DomainAdapter, FacesAdapter, LinearAdapter, Observation, adapter_classes, get_adapter

__all__ = ["DomainAdapter", "FacesAdapter", "LinearAdapter", "Observation", "adapter_classes", "get_adapter"]
