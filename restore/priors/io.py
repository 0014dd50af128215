"""Prior files: ``.safetensors`` weights with a JSON model card in their metadata, and converters.

One file carries everything: the generator's tensors (``generator.*``), the latent statistics the
search needs (``gauss_mean``, ``gauss_std``, ``latent_avg``) and the card (``metadata["card"]``).
Pickled files (``.pt``/``.pth``/``.pkl``) are never loaded as priors; rosinality checkpoints are
converted once with :func:`convert_rosinality`, which reads them with ``torch.load(weights_only=True)``.

Example:
    >>> import tempfile, pathlib, torch
    >>> from restore.priors.stylegan2 import StyleGAN2Generator
    >>> g = StyleGAN2Generator(8, 16, 2, {4: 8, 8: 8})
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "toy.safetensors"
    >>> _ = save_prior(path, g, {"name": "toy", "domain": "test"})
    >>> load_prior(path).resolution
    8
"""

from __future__ import annotations

import argparse
import hashlib
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

import torch
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from safetensors import SafetensorError
from safetensors.torch import load_file, safe_open, save_file
from torch import nn

from ..errors import RestoreError
from .base import Prior
from .dcgan import DCGANGenerator
from .stylegan2 import StyleGAN2Generator

ARCHITECTURES: dict[str, type[nn.Module]] = {"stylegan2": StyleGAN2Generator, "dcgan": DCGANGenerator}
PICKLE_SUFFIXES = {".pt", ".pth", ".pkl", ".pickle", ".ckpt", ".bin"}


class ModelCard(BaseModel):
    """What a prior is, what it learned from, and under which terms."""

    model_config = ConfigDict(extra="allow")

    name: str
    architecture: Literal["stylegan2", "dcgan", "module"]
    arguments: dict[str, Any] = Field(default_factory=dict)
    factory: str | None = Field(None, description="architecture module: the package.module:function that builds "
                                                  "the generator (runs code: entry points or --trust-code only)")
    resolution: int = Field(ge=1)
    channels: int = Field(ge=1)
    latent_dim: int = Field(ge=1)
    latent_distribution: Literal["normal", "uniform"] = "normal"
    output_range: tuple[float, float] = (-1.0, 1.0)
    domain: str = "unspecified"
    normalisation: str = "linear: data range -> [-1, 1]"
    training_data: str = "unspecified"
    licence: str = "unspecified"
    latent_stats: str = "gauss_mean/gauss_std: Gaussian fit of the mapping output before its last leaky ReLU (PULSE)"
    storage_dtype: str = "float32"
    framing: dict[str, float] | None = Field(
        None, description="where training images had their object: x, y, size in prior pixels (detector's convention)"
    )
    prior_weight: dict[str, float] | None = Field(
        None, description="by factor: the share of the prior's restoration over the classical solution that "
                          "minimises the squared error on held-out crops (benchmarks.calibrate; the recipe's "
                          "consistency.prior_weight: card)"
    )


def architecture_arguments(generator: nn.Module) -> tuple[str, dict[str, Any]]:
    """Architecture name and constructor arguments of a known generator."""
    if isinstance(generator, StyleGAN2Generator):
        return "stylegan2", {
            "size": generator.size, "style_dim": generator.style_dim, "n_mlp": generator.n_mlp,
            "channels": {str(k): v for k, v in generator.channels.items()}, "img_channels": generator.img_channels,
        }
    if isinstance(generator, DCGANGenerator):
        return "dcgan", {"latent_dim": generator.latent_dim, "size": generator.size, "width": generator.width,
                         "img_channels": generator.img_channels}
    raise TypeError(f"unknown generator type {type(generator).__name__}")


def build_generator(architecture: str, arguments: dict[str, Any]) -> nn.Module:
    """Instantiate a generator from its card's architecture and arguments."""
    if architecture == "stylegan2":
        arguments = {**arguments, "channels": {int(k): v for k, v in arguments["channels"].items()}}
    return ARCHITECTURES[architecture](**arguments)


def card_shape(architecture: str, arguments: dict[str, Any]) -> dict[str, int]:
    """Resolution, channels and latent size that a known architecture's arguments build."""
    latent = "style_dim" if architecture == "stylegan2" else "latent_dim"
    return {"resolution": int(arguments["size"]), "channels": int(arguments.get("img_channels", 3)),
            "latent_dim": int(arguments[latent])}


def make_card(generator: nn.Module, info: dict[str, Any]) -> ModelCard:
    """A validated model card for ``generator`` with the descriptive fields in ``info``."""
    architecture, arguments = architecture_arguments(generator)
    return ModelCard(**{"architecture": architecture, "arguments": arguments, **card_shape(architecture, arguments),
                        **info})


def save_prior(path: str | Path, generator: nn.Module, info: dict[str, Any], dtype: torch.dtype = torch.float32,
               latent_avg: torch.Tensor | None = None) -> Prior:
    """Write ``generator``, its card and latent statistics to a ``.safetensors`` file (atomically).

    The statistics are fitted here; ``latent_avg`` replaces the fitted mean ``w`` when the source has one.
    """
    card = make_card(generator, {**info, "storage_dtype": str(dtype).removeprefix("torch.")})
    prior = Prior(generator, card.model_dump(mode="json"))
    prior.fit_latent_stats()
    if latent_avg is not None:
        prior.latent_avg.copy_(latent_avg.reshape(-1))
    write_prior(path, prior, card, dtype)
    return prior


def write_prior(path: str | Path, prior: Prior, card: ModelCard, dtype: torch.dtype = torch.float32) -> None:
    """Write a prior's tensors (``dtype``; latent statistics in float32) and ``card`` to ``path``, atomically."""
    tensors = {k: v.detach().to(dtype if v.is_floating_point() else v.dtype).contiguous() for k, v in prior.state_dict().items()}
    for key in ("gauss_mean", "gauss_std", "latent_avg"):
        tensors[key] = tensors[key].float()  # statistics stay in full precision
    _write(path, tensors, card)


def _write(path: str | Path, tensors: dict[str, torch.Tensor], card: ModelCard) -> None:
    """Write a prior file (atomically): tensors, with the card and format in the metadata."""
    from ..imageio import atomic_write

    metadata = {"card": card.model_dump_json(), "format": "restore-prior-v1"}
    atomic_write(path, lambda tmp: save_file(tensors, str(tmp), metadata=metadata), overwrite=True)


def refuse_pickle(path: Path) -> None:
    """Raise a one-line error for pickled weights (zip-pickle or raw pickle), without unpickling them. A
    safetensors file (an 8-byte header length, then its JSON header) is never taken for one, whatever its
    first byte."""
    head = path.read_bytes()[:9] if path.is_file() else b""
    safetensors = head[8:9] == b"{"
    if path.suffix.lower() in PICKLE_SUFFIXES or not safetensors and (head[:2] == b"PK" or head[:1] == b"\x80"):
        raise RestoreError(
            "pickled weights are refused (they can execute code); convert a rosinality checkpoint with "
            "`restore priors convert CKPT -o NAME.safetensors`, any other generator's state dict with "
            "`--factory` (see the README)", source=path,
        )


def read_card(path: str | Path) -> ModelCard:
    """The model card of a prior file."""
    path = Path(path)
    refuse_pickle(path)
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
    except (SafetensorError, OSError) as err:
        raise RestoreError(f"not a safetensors prior ({err})", source=path) from None
    if "card" not in meta:
        raise RestoreError("safetensors file has no model card in its metadata", source=path)
    try:
        return ModelCard.model_validate_json(meta["card"])
    except ValidationError as err:
        first = err.errors()[0]
        raise RestoreError(f"invalid model card: {'.'.join(map(str, first['loc']))}: {first['msg']}", source=path) from None


def update_card(path: str | Path, fields: dict[str, Any]) -> ModelCard:
    """Rewrite a prior file's card with ``fields`` added or replaced; the weights are left as they are."""
    card = ModelCard.model_validate({**read_card(path).model_dump(mode="json"), **fields})
    _write(path, load_file(str(path)), card)
    return card


def load_prior(path: str | Path, build: Callable[[ModelCard], nn.Module] | None = None) -> Prior:
    """Load a prior from a ``.safetensors`` file with a model card (weights cast to float32); ``build`` makes
    the generator of an ``architecture: module`` card (see :func:`restore.priors.registry.load`)."""
    path = Path(path)
    card = read_card(path)
    tensors = {k: v.float() if v.is_floating_point() else v for k, v in load_file(str(path)).items()}
    if card.architecture == "module":
        if build is None:
            raise RestoreError(f"the card names a factory ({card.factory}) that builds the generator: load it "
                               "through restore.priors.load (a recipe's prior), which decides whether code may run",
                               source=path)
        return _loaded(path, Prior(build(card), card.model_dump(mode="json")), tensors)
    try:
        shape = card_shape(card.architecture, card.arguments)
        generator = build_generator(card.architecture, card.arguments)
    except (TypeError, KeyError, ValueError, AttributeError) as err:
        raise RestoreError(f"the card's arguments do not build a {card.architecture} generator "
                           f"({type(err).__name__}: {err})", source=path) from None
    wrong = [f"{k} {getattr(card, k)} (its arguments build {v})" for k, v in shape.items() if getattr(card, k) != v]
    if wrong:
        raise RestoreError(f"the card says {', '.join(wrong)}", source=path)
    return _loaded(path, Prior(generator, card.model_dump(mode="json")), tensors)


def _loaded(path: Path, prior: Prior, tensors: dict[str, torch.Tensor]) -> Prior:
    """``prior`` with ``tensors`` loaded (all of them, exactly), checked (:meth:`Prior.check`) and its file's hash."""
    try:
        prior.load_state_dict(tensors, strict=True)
    except RuntimeError as err:
        detail = " ".join(str(err).split())[:200]
        raise RestoreError(f"weights do not match the card's architecture ({detail})", source=path) from None
    prior.check(str(path))
    prior.card["sha256"] = sha256(path)
    return prior


def sha256(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def rosinality_arguments(state: dict[str, torch.Tensor]) -> dict[str, Any]:
    """Infer a rosinality generator's size, style_dim, mapping depth and channel widths from its state dict."""
    n_mlp = len({k.split(".")[1] for k in state if k.startswith("style.")})
    style_dim = state["style.1.weight"].shape[1]
    n_rgbs = len({k.split(".")[1] for k in state if k.startswith("to_rgbs.")})
    size = 2 ** (n_rgbs + 2)
    channels = {"4": int(state["conv1.conv.weight"].shape[1])}
    for i in range(n_rgbs):
        channels[str(2 ** (i + 3))] = int(state[f"convs.{2 * i}.conv.weight"].shape[1])
    img_channels = int(state["to_rgb1.bias"].shape[1])
    return {"size": size, "style_dim": style_dim, "n_mlp": n_mlp, "channels": channels, "img_channels": img_channels}


def convert_rosinality(ckpt_path: str | Path, out_path: str | Path, info: dict[str, Any] | None = None) -> Prior:
    """Convert a rosinality ``stylegan2-pytorch`` checkpoint (``g_ema`` + optional ``latent_avg``) safely.

    Only tensors, containers and ``argparse.Namespace`` (training checkpoints hold one) are allowed
    by the unpickler; anything else is refused before it can run.
    """
    ckpt_path = Path(ckpt_path)
    try:
        with torch.serialization.safe_globals([argparse.Namespace]):
            ckpt = torch.load(ckpt_path, map_location="cpu", weights_only=True)
    except Exception as err:  # UnpicklingError and friends: one line, nothing executed
        raise RestoreError(f"refused to load checkpoint ({str(err).splitlines()[0]})", source=ckpt_path) from None
    state = ckpt.get("g_ema", ckpt) if isinstance(ckpt, dict) else None
    if not isinstance(state, dict) or "style.1.weight" not in state:
        raise RestoreError("not a rosinality StyleGAN2 checkpoint (no g_ema / style.1.weight)", source=ckpt_path)
    try:
        arguments = rosinality_arguments(state)
    except (KeyError, IndexError) as err:
        raise RestoreError(f"incomplete rosinality checkpoint (no {err})", source=ckpt_path) from None
    generator = build_generator("stylegan2", arguments)
    # rosinality's upsampling FIR kernels are buffers we rebuild; they are checked, not loaded
    own = generator.state_dict()
    weights = {k: v for k, v in state.items() if k in own}
    generator.load_state_dict(weights, strict=False)
    missing = [k for k in own if k not in state and not k.endswith("kernel")]
    if missing:
        raise RestoreError(f"checkpoint lacks {missing[:3]}", source=ckpt_path)
    info = {"name": Path(out_path).stem, "source": f"converted from {ckpt_path.name}", **(info or {})}
    latent_avg = ckpt.get("latent_avg") if isinstance(ckpt, dict) else None
    return save_prior(out_path, generator, info, latent_avg=latent_avg if isinstance(latent_avg, torch.Tensor) else None)
