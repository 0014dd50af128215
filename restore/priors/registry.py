"""Built-in priors by name: ``restore/priors/weights/<name>.safetensors``.

Example:
    >>> "faces" in builtin_names()
    True
"""

from __future__ import annotations

import importlib
from importlib.metadata import entry_points
from pathlib import Path

import torch
from safetensors.torch import load_file

from ..errors import RestoreError
from ..spec import BuiltinPriorSpec, FilePriorSpec, ModulePriorSpec, PriorSpec
from .base import Prior
from .io import load_prior, refuse_pickle

WEIGHTS_DIR = Path(__file__).parent / "weights"


def builtin_names() -> list[str]:
    """Names of the priors shipped with the package."""
    return sorted(p.stem for p in WEIGHTS_DIR.glob("*.safetensors"))


def builtin_path(name: str) -> Path:
    path = WEIGHTS_DIR / f"{name}.safetensors"
    if not path.is_file():
        raise RestoreError(f"no built-in prior {name!r} (available: {', '.join(builtin_names()) or 'none'})")
    return path


TRUST_HINT = ("install it as a 'restore.priors' entry point, or pass --trust-code (trust_code=True) if you "
              "trust this recipe")


def check_trusted(spec: PriorSpec, trust_code: bool = False) -> None:
    """A recipe never runs code unless asked: a ``module`` prior's factory must be an installed
    ``restore.priors`` entry point (by name, or by its ``module:function``), unless ``trust_code``."""
    if not isinstance(spec, ModulePriorSpec) or trust_code:
        return
    installed = entry_points(group="restore.priors")
    if any(spec.factory in (ep.name, ep.value) for ep in installed):
        return
    raise RestoreError(f"prior.factory: {spec.factory!r} would run code named by the recipe; {TRUST_HINT}")


def load_module_prior(spec: ModulePriorSpec, trust_code: bool = False) -> Prior:
    """A user generator from ``package.module:factory`` or a ``restore.priors`` entry point (+ optional
    safetensors weights) as a z-space prior; other factories only with ``trust_code``."""
    check_trusted(spec, trust_code)
    named = [ep for ep in entry_points(group="restore.priors") if ep.name == spec.factory]
    try:
        if named:
            factory = named[0].load()
        else:
            module_name, _, attr = spec.factory.partition(":")
            factory = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError, ValueError) as err:
        raise RestoreError(f"cannot import prior factory {spec.factory!r} ({err})") from None
    generator = factory()
    if not isinstance(generator, torch.nn.Module):
        raise RestoreError(f"prior factory {spec.factory!r} did not return a torch.nn.Module")
    if spec.weights is not None:
        refuse_pickle(spec.weights)
        generator.load_state_dict(load_file(str(spec.weights)))
    card = {"name": spec.factory, "resolution": spec.resolution, "channels": spec.channels,
            "latent_dim": spec.latent_dim, "latent_distribution": spec.latent_distribution}
    return Prior(generator, card)


def load(spec: PriorSpec | str | Path, trust_code: bool = False) -> Prior:
    """Load a prior from a spec, a built-in name, or a path to a ``.safetensors`` file (``module`` priors
    only from installed entry points, unless ``trust_code``)."""
    if isinstance(spec, BuiltinPriorSpec):
        return load_prior(builtin_path(spec.name))
    if isinstance(spec, FilePriorSpec):
        return load_prior(spec.path)
    if isinstance(spec, ModulePriorSpec):
        return load_module_prior(spec, trust_code)
    path = Path(spec)
    return load_prior(path if path.suffix else builtin_path(str(spec)))
