"""Training generative priors on folders of domain images (``restore train-prior``)."""

from .train import TrainSpec, load_train_spec, train

__all__ = ["TrainSpec", "load_train_spec", "train"]
