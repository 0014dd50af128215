"""The operator test registry: every linear forward operator passes adjointness, gradient, batch,
dtype and device checks (on the CPU, and on an accelerator where one is present); plus PULSE-equivalence of bicubic downsampling and flux conservation of binning."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.nn import functional as F

from restore.degradations import BinnedBlur, Blur, Compose, Downsample, Warp, binned_blur, blur, downsample
from restore.degradations.psf import airy_psf, gaussian_psf, moffat_psf, motion_psf

OPERATORS = {
    "gaussian-reflect": lambda: Blur(gaussian_psf(2.0)),
    "gaussian-zeros": lambda: Blur(gaussian_psf(2.0), border="constant"),
    "moffat-fft": lambda: Blur(moffat_psf(3.0, 2.5, size=25)),
    "airy-circular": lambda: Blur(airy_psf(1.5, size=17), border="circular"),
    "motion": lambda: Blur(motion_psf(5, 30.0)),
    "bicubic-2": lambda: Downsample(2, "bicubic"),
    "bicubic-3": lambda: Downsample(3, "bicubic"),
    "bicubic-4": lambda: Downsample(4, "bicubic"),
    "bicubic-8": lambda: Downsample(8, "bicubic"),
    "sum-4": lambda: Downsample(4, "sum"),
    "mean-3": lambda: Downsample(3, "mean"),
    "psf+bicubic": lambda: Downsample(4, "bicubic") * Blur(gaussian_psf(1.5)),
    "psf+sum+psf": lambda: Compose([Blur(moffat_psf(2.0, 3.5)), Downsample(2, "sum"), Blur(gaussian_psf(1.0))]),
    "psf+mean-4 (binned)": lambda: Downsample(4, "mean") * Blur(gaussian_psf(2.0)),
    "motion+sum-3-circular (binned)": lambda: Downsample(3, "sum") * Blur(motion_psf(5, 30.0), border="circular"),
    "moffat-fft+mean-2 (not fused)": lambda: Downsample(2, "mean") * Blur(moffat_psf(3.0, 2.5, size=25)),
    "warp+psf+bicubic": lambda: Downsample(4, "bicubic") * Blur(gaussian_psf(1.5))
    * Warp(torch.tensor([[1.17, 0.0, 3.3], [0.0, 1.17, -2.6]]), (48, 72), (48, 72)),
    "warp-shrink": lambda: Warp(torch.tensor([[0.45, 0.1, 2.0], [-0.1, 0.45, 9.0]]), (48, 72), (48, 72)),  # anti-aliased
}
SHAPE = (2, 3, 48, 72)  # non-square, divisible by 2, 3, 4, 8


@pytest.fixture(params=sorted(OPERATORS), ids=sorted(OPERATORS))
def op(request):
    return OPERATORS[request.param]().double()


def test_adjoint(op, rng, device) -> None:
    op = op.to(device)
    x = torch.randn(SHAPE, generator=rng, dtype=torch.float64).to(device)
    ax = op(x)
    y = torch.randn(ax.shape, generator=rng, dtype=torch.float64).to(device)
    lhs, rhs = (ax * y).sum(), (x * op.adjoint(y)).sum()
    assert abs(float(lhs - rhs)) <= 1e-5 * max(1.0, abs(float(lhs)))
    assert op.adjoint(y).shape == x.shape and op.adjoint(y).device == x.device


def test_gradcheck(op, rng, device) -> None:
    x = torch.randn(1, 1, 24, 24, generator=rng, dtype=torch.float64).to(device).requires_grad_(True)
    # CUDA's convolution backward sums in a nondeterministic order: allow rounding-level differences
    assert torch.autograd.gradcheck(op.to(device), (x,), eps=1e-6, atol=1e-6, nondet_tol=1e-12)


def test_same_result_on_every_device(op, rng, device) -> None:
    x = torch.randn(SHAPE, generator=rng, dtype=torch.float64)
    assert torch.allclose(op.to(device)(x.to(device)).cpu(), op.cpu()(x), atol=1e-10)


def test_batch_equals_single_calls(op, rng) -> None:
    x = torch.randn(SHAPE, generator=rng, dtype=torch.float64)
    batched = op(x)
    singles = torch.cat([op(x[i : i + 1]) for i in range(x.shape[0])])
    assert torch.allclose(batched, singles, atol=1e-12)


def test_dtype_and_output_size(op, rng) -> None:
    x = torch.randn(SHAPE, generator=rng, dtype=torch.float32)
    y = op.float()(x)
    assert y.dtype == torch.float32
    assert tuple(y.shape[-2:]) == op.output_size(*SHAPE[-2:])


def test_is_linear(op, rng) -> None:
    a, b = (torch.randn(SHAPE, generator=rng, dtype=torch.float64) for _ in range(2))
    assert torch.allclose(op(2 * a - 3 * b), 2 * op(a) - 3 * op(b), atol=1e-10)


# ----------------------------------------------------------------------------- PULSE reference
def _pulse_cubic(x: float, a: float = -0.5) -> float:
    x = abs(x)
    if x <= 1.0:
        return (a + 2.0) * x**3 - (a + 3.0) * x**2 + 1
    if x < 2.0:
        return a * x**3 - 5.0 * a * x**2 + 8.0 * a * x - 4.0 * a
    return 0.0


def pulse_bicubic_downsample(x: torch.Tensor, factor: int) -> torch.Tensor:
    """An independent re-derivation of PULSE's ``BicubicDownSample.forward`` (reflect padding)."""
    size = 4 * factor
    k = torch.tensor([_pulse_cubic((i - size // 2 + 0.5) / factor) for i in range(size)], dtype=x.dtype)
    k = k / k.sum()
    c = x.shape[1]
    k1 = k.reshape(1, 1, size, 1).repeat(c, 1, 1, 1)
    k2 = k.reshape(1, 1, 1, size).repeat(c, 1, 1, 1)
    pad = max(size - factor, 0)
    top, left = pad // 2, pad // 2
    x = F.pad(x, (0, 0, top, pad - top), "reflect")
    x = F.conv2d(x, k1, stride=(factor, 1), groups=c)
    x = F.pad(x, (left, pad - left, 0, 0), "reflect")
    return F.conv2d(x, k2, stride=(1, factor), groups=c)


@pytest.mark.parametrize("factor", [2, 4, 8, 16])
def test_bicubic_equals_pulse_for_even_factors(factor: int, rng) -> None:
    x = torch.rand(2, 3, 4 * factor, 6 * factor, generator=rng, dtype=torch.float64)
    assert torch.allclose(downsample(x, factor, "bicubic"), pulse_bicubic_downsample(x, factor), atol=1e-5)


@pytest.mark.parametrize("factor", [3, 5])
def test_odd_factor_keeps_pixel_centres(factor: int) -> None:
    """A linear ramp's block average sits at the block centre: our bicubic output must equal it."""
    h = 8 * factor
    ramp = torch.arange(h, dtype=torch.float64).reshape(1, 1, h, 1).expand(1, 1, h, h).contiguous()
    out = downsample(ramp, factor, "bicubic")
    expected = downsample(ramp, factor, "mean")
    interior = slice(2, -2)
    assert torch.allclose(out[..., interior, interior], expected[..., interior, interior], atol=1e-9)


@pytest.mark.parametrize("factor", [2, 3, 4, 8, 16])
def test_sum_binning_conserves_flux(factor: int, rng) -> None:
    x = torch.rand(1, 4, 16 * factor, 3 * factor, generator=rng, dtype=torch.float64) * 1000
    out = downsample(x, factor, "sum")
    assert torch.equal(out.sum(dim=(-1, -2)), x.sum(dim=(-1, -2))) or torch.allclose(
        out.sum(dim=(-1, -2)), x.sum(dim=(-1, -2)), rtol=1e-14
    )
    assert torch.allclose(downsample(x, factor, "mean") * factor**2, out)


def test_fft_and_direct_convolution_agree(rng) -> None:
    x = torch.rand(1, 2, 40, 40, generator=rng, dtype=torch.float64)
    k = gaussian_psf(4.0, size=21)  # FFT path
    small = gaussian_psf(4.0, size=21)[3:-3, 3:-3]
    small = small / small.sum()
    from restore.degradations import blur as blur_fn
    from restore.degradations.blur import FFT_THRESHOLD

    assert k.shape[0] > FFT_THRESHOLD >= small.shape[0]
    direct = F.conv2d(F.pad(x, (10, 10, 10, 10), mode="reflect"), k.flip(0, 1)[None, None].expand(2, 1, -1, -1), groups=2)
    assert torch.allclose(blur_fn(x, k), direct, atol=1e-10)


@pytest.mark.parametrize(("kernel", "factor", "method", "border", "mode"), [
    (gaussian_psf(2.0), 4, "mean", "reflect", "mirror"),
    (motion_psf(5, 30.0), 3, "sum", "circular", "wrap"),
    (moffat_psf(2.0, 3.5), 2, "sum", "constant", "constant"),
])
def test_binned_blur_equals_scipy_convolution_then_block_binning(kernel, factor, method, border, mode, rng) -> None:
    """An independent reference: scipy's convolution on the sharp grid, then numpy block sums."""
    ndimage = pytest.importorskip("scipy.ndimage")
    x = torch.rand(1, 2, 8 * factor, 5 * factor, generator=rng, dtype=torch.float64)
    sharp = np.stack([ndimage.convolve(p, kernel.double().numpy(), mode=mode) for p in x[0].numpy()])
    blocks = sharp.reshape(2, 8, factor, 5, factor).sum(axis=(2, 4)) / (factor**2 if method == "mean" else 1)
    assert kernel.shape[0] % 2 == 1  # scipy and restore centre odd kernels alike
    assert np.allclose(binned_blur(x, kernel, factor, method, border)[0].numpy(), blocks, atol=1e-12)


def test_blur_then_binning_is_fused_where_the_strided_convolution_is_cheaper() -> None:
    fused = Downsample(4, "mean") * Blur(gaussian_psf(2.0))
    assert [type(op) for op in fused.ops] == [BinnedBlur] and fused.scale() == 4
    assert [type(op) for op in (Downsample(2, "mean") * Blur(moffat_psf(3.0, 2.5, size=25))).ops] == [Blur, Downsample]
    assert [type(op) for op in (Downsample(4, "bicubic") * Blur(gaussian_psf(2.0))).ops] == [Blur, Downsample]
    with pytest.warns(UserWarning, match="cropped"):  # a kernel larger than the image: cropped as blur does
        y = (Downsample(2, "mean") * Blur(gaussian_psf(2.0)))(torch.ones(1, 1, 2, 2))
    assert torch.allclose(y, torch.ones_like(y), atol=1e-5)


@pytest.mark.parametrize("mode", ["constant", "reflect", "replicate", "circular"])
def test_pad_adjoint_equals_autograd_of_the_padding(mode: str, rng) -> None:
    from restore.degradations.base import pad_adjoint

    pads = (3, 1, 0, 2)
    x = torch.randn(2, 3, 7, 9, generator=rng, dtype=torch.float64, requires_grad=True)
    y = torch.randn(F.pad(x, pads, mode=mode).shape, generator=rng, dtype=torch.float64)
    (reference,) = torch.autograd.grad(F.pad(x, pads, mode=mode), x, y)
    assert torch.allclose(pad_adjoint(y, pads, mode), reference, atol=1e-12)


def test_blur_is_a_true_convolution() -> None:
    """An asymmetric kernel moves a point source the way a convolution does (not a correlation)."""
    x = torch.zeros(1, 1, 9, 9, dtype=torch.float64)
    x[..., 4, 4] = 1
    k = torch.zeros(3, 3, dtype=torch.float64)
    k[1, 2] = 1  # shift right
    assert blur(x, k)[0, 0, 4, 5] == 1


def test_oversized_kernel_is_cropped_with_a_warning() -> None:
    with pytest.warns(UserWarning, match="cropped"):
        y = blur(torch.ones(1, 1, 8, 8), moffat_psf(3.0, 1.5))
    assert torch.allclose(y, torch.ones_like(y), atol=1e-5)


def test_bad_shapes_give_clear_errors() -> None:
    with pytest.raises(ValueError, match=r"\(B, C, H, W\)"):
        downsample(torch.ones(4, 4), 2)
    with pytest.raises(ValueError, match="not divisible"):
        downsample(torch.ones(1, 1, 10, 10), 4)
    with pytest.raises(ValueError, match="positive integer"):
        Downsample(0)


def test_shrinking_warp_is_antialiased_like_scipy(rng) -> None:
    """Halving: Gaussian smoothing of sigma (2 - 1) / 2 (scikit-image's rule), then bilinear sampling —
    the same as scipy.ndimage's gaussian_filter + affine_transform away from the borders."""
    ndimage = pytest.importorskip("scipy.ndimage")
    x = torch.rand(1, 1, 48, 48, generator=rng, dtype=torch.float64)
    m = torch.tensor([[0.5, 0.0, 3.25], [0.0, 0.5, 1.5]], dtype=torch.float64)  # input (x, y) -> output
    out = Warp(m, (48, 48), (20, 20)).double()(x)[0, 0].numpy()
    smooth = ndimage.gaussian_filter(x[0, 0].numpy(), 0.5, mode="mirror", truncate=3.0)
    inverse = torch.linalg.inv(torch.cat([m, torch.tensor([[0.0, 0.0, 1.0]], dtype=m.dtype)]))[:2]
    rowcol = inverse[[1, 0]][:, [1, 0, 2]].numpy()  # scipy works in (row, col)
    reference = ndimage.affine_transform(smooth, rowcol[:, :2], offset=rowcol[:, 2], output_shape=(20, 20), order=1)
    inside = (slice(4, None), slice(4, None))  # output pixels whose source lies inside the input
    assert abs(out[inside] - reference[inside]).max() < 1e-9
    checker = (torch.arange(48)[:, None] + torch.arange(48)[None]) % 2 * 1.0
    shrunk = Warp(torch.tensor([[0.37, 0.0, 1.3], [0.0, 0.37, 0.2]]), (48, 48), (16, 16))(checker[None, None])
    assert float(shrunk[0, 0, 2:-2, 2:-2].std()) < 0.01  # no moire from the finest detail
