"""Generative priors: StyleGAN2 and DCGAN generators, user modules, safetensors files with model cards."""

from .base import Prior
from .dcgan import DCGANGenerator
from .io import ModelCard, convert_rosinality, load_prior, read_card, save_prior
from .registry import builtin_names, load
from .stylegan2 import StyleGAN2Generator, rosinality_channels

__all__ = [
    "DCGANGenerator", "ModelCard", "Prior", "StyleGAN2Generator", "builtin_names", "convert_rosinality", "load",
    "load_prior", "read_card", "rosinality_channels", "save_prior",
]
