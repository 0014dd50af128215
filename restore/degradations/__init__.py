"""Differentiable forward models: PSFs, blur, resampling, noise likelihoods, and their composition."""

from .base import Compose, LinearOperator
from .blur import Blur, blur, blur_adjoint
from .compose import build_forward, build_likelihood, build_psf
from .noise import GaussianNoise, Likelihood, PoissonGaussianNoise, PoissonNoise
from .psf import airy_psf, gaussian_psf, load_psf, moffat_psf, motion_psf, normalise_psf
from .resample import Downsample, downsample, downsample_adjoint
from .warp import Warp, warp, warp_adjoint

__all__ = [
    "Blur", "Compose", "Downsample", "GaussianNoise", "Likelihood", "LinearOperator", "PoissonGaussianNoise",
    "PoissonNoise", "airy_psf", "blur", "blur_adjoint", "build_forward", "build_likelihood", "build_psf",
    "downsample", "downsample_adjoint", "gaussian_psf", "load_psf", "moffat_psf", "motion_psf", "normalise_psf",
    "Warp", "warp", "warp_adjoint",
]  # fmt: skip
