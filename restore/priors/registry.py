"""Built-in priors by name: ``restore/priors/weights/<name>.safetensors``.

Example:
    >>> "faces" in builtin_names()
    True
"""

from __future__ import annotations

import importlib
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file

from ..errors import RestoreError
from ..spec import BuiltinPriorSpec, FilePriorSpec, ModulePriorSpec, PriorSpec
from .base import Prior
from .io import ModelCard, load_prior, refuse_pickle, write_prior

WEIGHTS_DIR = Path(__file__).parent / "weights"


def builtin_names() -> list[str]:
    """Names of the priors shipped with the package."""
    return sorted(p.stem for p in WEIGHTS_DIR.glob("*.safetensors"))


def builtin_path(name: str) -> Path:
    path = WEIGHTS_DIR / f"{name}.safetensors"
    if name not in builtin_names():  # a name, never a path
        raise RestoreError(f"no built-in prior {name!r} (available: {', '.join(builtin_names()) or 'none'})")
    return path


TRUST_HINT = ("install it as a 'restore.priors' entry point, or pass --trust-code (trust_code=True) if you "
              "trust this recipe")


def check_trusted(spec: PriorSpec | str, trust_code: bool = False) -> None:
    """A recipe or a weights file never runs code unless asked: a factory (a ``module`` prior's, or the one
    a prior card names) must be an installed ``restore.priors`` entry point (by name, or by its
    ``module:function``), unless ``trust_code``."""
    factory = spec if isinstance(spec, str) else spec.factory if isinstance(spec, ModulePriorSpec) else None
    if factory is None or trust_code:
        return
    installed = entry_points(group="restore.priors")
    if any(factory in (ep.name, ep.value) for ep in installed):
        return
    raise RestoreError(f"prior factory {factory!r} would run code named by the recipe or weights; {TRUST_HINT}")


def build_from_factory(factory: str, trust_code: bool = False) -> torch.nn.Module:
    """The generator a factory (entry-point name or ``package.module:function``) returns; see :func:`check_trusted`."""
    check_trusted(factory, trust_code)
    named = [ep for ep in entry_points(group="restore.priors") if ep.name == factory]
    try:
        if named:
            make = named[0].load()
        else:
            module_name, _, attr = factory.partition(":")
            make = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError, ValueError) as err:
        raise RestoreError(f"cannot import prior factory {factory!r} ({err})") from None
    generator = make()
    if not isinstance(generator, torch.nn.Module):
        raise RestoreError(f"prior factory {factory!r} did not return a torch.nn.Module")
    return generator


def read_state(path: str | Path, pickled: bool = False) -> Any:
    """The tensors of a ``.safetensors`` file, or with ``pickled`` of a pickle read with
    ``torch.load(weights_only=True)`` (tensors and containers only: nothing runs); else pickles are refused."""
    path = Path(path)
    if pickled:
        try:
            return torch.load(path, map_location="cpu", weights_only=True)
        except Exception as err:  # UnpicklingError and friends: one line, nothing executed
            raise RestoreError(f"refused to load checkpoint ({str(err).splitlines()[0]})", source=path) from None
    refuse_pickle(path)
    try:
        return load_file(str(path))
    except (SafetensorError, OSError) as err:
        raise RestoreError(f"not a safetensors file ({err})", source=path) from None


def load_weights(generator: torch.nn.Module, state: dict[str, torch.Tensor], factory: str, source: str | Path) -> None:
    """Load ``state`` into a factory's generator, every tensor and only those; a misfit is a one-line error."""
    try:
        generator.load_state_dict(state, strict=True)
    except RuntimeError as err:
        raise RestoreError(f"the state dict does not fit {factory}'s generator "
                           f"({' '.join(str(err).split())[:150]})", source=source) from None


def module_card(factory: str, facts: dict[str, Any]) -> dict[str, Any]:
    """The card of a user generator: the factory and the latent facts the user states (``resolution``,
    ``channels``, ``latent_dim``, ``latent_distribution``, optional ``framing``)."""
    return {"name": factory, "architecture": "module", "factory": factory, "domain": "unspecified",
            **{k: v for k, v in facts.items() if v is not None}}


def load_module_prior(spec: ModulePriorSpec, trust_code: bool = False) -> Prior:
    """A user generator from ``package.module:factory`` or a ``restore.priors`` entry point (+ optional
    safetensors weights) as a z-space prior; other factories only with ``trust_code``."""
    generator = build_from_factory(spec.factory, trust_code)
    if spec.weights is not None:
        load_weights(generator, read_state(spec.weights), spec.factory, spec.weights)
    card = module_card(spec.factory, spec.model_dump(include={"resolution", "channels", "latent_dim",
                                                              "latent_distribution", "framing"}))
    prior = Prior(generator, card)
    prior.check(str(spec.weights or spec.factory))
    return prior


def load(spec: PriorSpec | str | Path, trust_code: bool = False) -> Prior:
    """Load a prior from a spec, a built-in name, or a path to a ``.safetensors`` file (``module`` priors,
    and files whose card names a factory, only from installed entry points unless ``trust_code``)."""
    if isinstance(spec, BuiltinPriorSpec):
        return load_prior(builtin_path(spec.name))
    if isinstance(spec, ModulePriorSpec):
        return load_module_prior(spec, trust_code)
    path = spec.path if isinstance(spec, FilePriorSpec) else Path(spec)
    path = path if path.suffix else builtin_path(str(spec))
    return load_prior(path, build=lambda card: build_from_factory(str(card.factory), trust_code))


def convert_state_dict(state_path: str | Path, out_path: str | Path, factory: str, facts: dict[str, Any],
                       trust_code: bool = False) -> Prior:
    """Any generator's state dict (``.safetensors``, or a pickle read with ``weights_only=True``: tensors
    only) as a prior file whose card names ``factory`` and the latent ``facts`` (see :func:`module_card`);
    the generator is built, loaded strictly and rendered once before anything is written."""
    state_path = Path(state_path)
    state: Any = read_state(state_path, pickled=state_path.suffix != ".safetensors")
    for key in ("state_dict", "g_ema", "generator", "model"):
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise RestoreError("not a state dict of tensors", source=state_path)
    generator = build_from_factory(factory, trust_code)
    load_weights(generator, state, factory, state_path)
    card = ModelCard.model_validate({**module_card(factory, facts), "name": Path(out_path).stem,
                                     "source": f"converted from {state_path.name}"})
    prior = Prior(generator, card.model_dump(mode="json"))
    prior.check(str(state_path))
    prior.fit_latent_stats()
    write_prior(out_path, prior, card)
    return prior
