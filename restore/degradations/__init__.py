"""Differentiable forward models: PSFs, blur, resampling, noise likelihoods, and their composition."""

from .base import Compose, LinearOperator
from .blur import BinnedBlur, Blur, binned_blur, binned_blur_adjoint, binned_kernel, blur, blur_adjoint
from .build import NOISE_PARAMETERS, build_forward, build_likelihood, build_psf, resolve_noise
from .noise import GaussianNoise, Likelihood, PoissonGaussianNoise, PoissonNoise, estimate_sigma, valid_mask
from .psf import airy_psf, gaussian_psf, load_psf, moffat_psf, motion_psf, normalise_psf
from .resample import Downsample, downsample, downsample_adjoint
from .warp import Warp, warp, warp_adjoint

__all__ = [
    "NOISE_PARAMETERS", "BinnedBlur", "Blur", "Compose", "Downsample", "GaussianNoise", "Likelihood", "LinearOperator", "PoissonGaussianNoise",
    "PoissonNoise", "airy_psf", "binned_blur", "binned_blur_adjoint", "binned_kernel", "blur", "blur_adjoint", "build_forward", "build_likelihood", "build_psf",
    "downsample", "downsample_adjoint", "estimate_sigma", "resolve_noise", "valid_mask", "gaussian_psf", "load_psf", "moffat_psf", "motion_psf", "normalise_psf",
    "Warp", "warp", "warp_adjoint",
]
