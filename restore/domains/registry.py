"""The domain adapters by ``kind``: built-in ones and those registered under the entry-point group
``restore.domains`` (``name = "package.module:AdapterClass"``).

Example:
    >>> sorted(adapter_classes())[:3]
    ['astronomy', 'faces', 'image']
    >>> get_adapter("faces").kind
    'faces'
"""

from __future__ import annotations

from importlib.metadata import entry_points
from typing import Any

from pydantic import ValidationError

from ..errors import RestoreError
from ..spec import PluginDomainSpec
from .astronomy import AstronomyAdapter
from .base import DomainAdapter, LinearAdapter
from .faces import FacesAdapter
from .microscopy import MicroscopyAdapter
from .satellite import SatelliteAdapter

BUILTIN_ADAPTERS: dict[str, type[DomainAdapter]] = {
    a.kind: a for a in (FacesAdapter, LinearAdapter, AstronomyAdapter, MicroscopyAdapter, SatelliteAdapter)
}


def adapter_classes() -> dict[str, type[DomainAdapter]]:
    """Built-in adapters plus those registered under the ``restore.domains`` entry-point group."""
    found = dict(BUILTIN_ADAPTERS)
    for ep in entry_points(group="restore.domains"):
        found.setdefault(ep.name, ep.load())
    return found


def get_adapter(spec: Any) -> DomainAdapter:
    """The adapter for a domain spec (its ``kind`` and options), or for a kind name (default options).
    A plug-in's options are validated by its ``spec_class``; problems are one-line errors."""
    kind = spec.kind if hasattr(spec, "kind") else str(spec)
    classes = adapter_classes()
    if kind not in classes:
        raise RestoreError(f"domain.kind: unknown domain {kind!r} (available: {', '.join(sorted(classes))})")
    cls = classes[kind]
    if not hasattr(spec, "kind") or isinstance(spec, PluginDomainSpec):
        options = spec.options() if isinstance(spec, PluginDomainSpec) else {}
        try:
            spec = cls.spec_class.model_validate({"kind": kind, **options})
        except ValidationError as err:
            e = err.errors()[0]
            where = ".".join(str(p) for p in e["loc"])
            raise RestoreError(f"domain.{where}: {e['msg'].removeprefix('Value error, ')}") from None
    return cls(spec)
