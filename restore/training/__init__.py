"""Training generative priors on folders of domain images (``restore train-prior``)."""

from ..spec import TrainSpec, load_train_spec
from .train import train

__all__ = ["TrainSpec", "load_train_spec", "train"]
