"""Single-image super-resolution: SRCNN (Dong, Loy, He & Tang 2014) and ESPCN (Shi et al. 2016), trained on the
mean squared error, scored by PSNR and SSIM (Wang, Bovik, Sheikh & Simoncelli 2004) against bicubic interpolation.

- ``srcnn``: input the low-resolution image already enlarged by bicubic interpolation (``scale=1``, as the paper)
  or, with ``scale > 1``, the low-resolution image itself, enlarged by a fixed bicubic first layer (so that it takes
  the same data as ESPCN); 9x9 conv (64) -> ReLU -> 1x1 conv (32) -> ReLU -> 5x5 conv (channels): patch extraction,
  non-linear mapping, reconstruction ('SAME' padding here, so that the output is the enlarged input's size; the
  paper's convolutions shrink it by 12 pixels).
- ``espcn``: input the low-resolution image itself; 5x5 conv (64) -> tanh -> 3x3 conv (32) -> tanh -> 3x3 conv
  (channels * scale**2) -> sub-pixel shuffle to ``scale`` times the size: every convolution at low resolution.

Both are linear-output models whose targets ``y`` are the high-resolution images (in [0, 1]): their objective
reports per image ``loss`` (the MSE), ``psnr`` of the prediction clipped to [0, 1], and ``bicubic_psnr``, the
bicubic enlargement's (so that the gain is in every log line).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np

from jaxnets import nn
from jaxnets.losses import mean_squared_error
from jaxnets.models._base import Model, check_sizes
from jaxnets.nn import PyTree, Shape

Array = jax.Array


def psnr(predictions: Array, targets: Array, data_range: float = 1.0) -> Array:
    """Peak signal-to-noise ratio per image, ``10 log10(data_range**2 / MSE)`` in dB over all but the batch axis
    (``inf`` for identical images)."""
    return 10.0 * jnp.log10(data_range**2 / mean_squared_error(predictions, targets))


def _gaussian_window(size: int = 11, sigma: float = 1.5) -> np.ndarray:
    g = np.exp(-0.5 * ((np.arange(size) - (size - 1) / 2) / sigma) ** 2)
    g /= g.sum()
    return np.outer(g, g)


def ssim(predictions: Array, targets: Array, data_range: float = 1.0) -> Array:
    """Structural similarity per image (Wang et al. 2004): local means, variances and covariance under an 11x11
    Gaussian window (sigma 1.5) at every position where it fits, ``K1 = 0.01``, ``K2 = 0.03``; the SSIM map averaged
    over positions and channels. Images ``(n, h, w, c)`` with sides >= 11. Equals scikit-image's
    ``structural_similarity(gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=...)``."""
    if predictions.ndim != 4 or predictions.shape != targets.shape or min(predictions.shape[1:3]) < 11:
        raise ValueError(
            f"ssim: predictions and targets must have one shape (n, height, width, channels) with sides >= 11; "
            f"got {tuple(predictions.shape)} and {tuple(targets.shape)}"
        )
    n, h, w, c = predictions.shape
    window = jnp.asarray(_gaussian_window(), jnp.float32)[:, :, None, None]

    def blur(z: Array) -> Array:  # each channel on its own: channels into the batch, one 1-channel convolution
        z = jnp.moveaxis(z, -1, 1).reshape(n * c, h, w, 1)
        return nn.conv_general(z, window, (1, 1), ((0, 0), (0, 0)), strategy="xla")

    x, y = predictions.astype(jnp.float32), targets.astype(jnp.float32)
    mx, my = blur(x), blur(y)
    vx, vy, cov = blur(x * x) - mx * mx, blur(y * y) - my * my, blur(x * y) - mx * my
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    index = ((2 * mx * my + c1) * (2 * cov + c2)) / ((mx * mx + my * my + c1) * (vx + vy + c2))
    return index.reshape(n, -1).mean(axis=1)


@dataclass(frozen=True)
class SuperResolution:
    """The objective of a super-resolution model: per-image MSE to the high-resolution targets ``y`` as ``loss``,
    with ``psnr`` and the bicubic baseline's ``bicubic_psnr``. ``scale`` is how much the model enlarges its input
    (1 for an SRCNN whose input is already the bicubic enlargement). ``border``: pixels at each edge of the output
    left out of all three, so that small training sub-images are scored where the zero padding does not reach (as
    the papers' unpadded convolutions score only their centre)."""

    scale: int
    border: int = 0

    def __call__(
        self,
        model: Model,
        params: PyTree,
        state: PyTree,
        x: Array,
        y: Array,
        *,
        key: Array | None = None,
        train: bool = False,
    ) -> tuple[dict[str, Array], PyTree]:
        outputs, state = model.apply(params, state, x, key=key, train=train)
        if np.shape(y) != outputs.shape:
            raise ValueError(
                f"{model.name}: targets must be the high-resolution images of shape {outputs.shape}; got {np.shape(y)}"
            )
        y = y.astype(outputs.dtype)
        baseline = x if self.scale == 1 else nn.bicubic_resize(x, *outputs.shape[1:3])
        b = self.border
        if b:
            if 2 * b >= min(outputs.shape[1:3]):
                raise ValueError(f"{model.name}: border {b} leaves nothing of outputs of shape {outputs.shape[1:]}")
            outputs, y, baseline = (z[:, b:-b, b:-b] for z in (outputs, y, baseline))
        return {
            "loss": mean_squared_error(outputs, y),
            "psnr": psnr(jnp.clip(outputs, 0.0, 1.0), y),
            "bicubic_psnr": psnr(baseline, y),
        }, state


def _check_image_shape(name: str, input_shape: Shape) -> tuple[int, int, int]:
    if len(input_shape) != 3:
        raise ValueError(f"{name}: input_shape must be (height, width, channels); got {tuple(input_shape)}")
    check_sizes(name, input_shape=input_shape)
    h, w, c = (int(d) for d in input_shape)
    return h, w, c


def _bicubic_enlargement(scale: int) -> nn.Layer:
    """A fixed layer enlarging images ``scale`` times by ``nn.bicubic_resize`` (SRCNN's pre-processing)."""

    def fn(x: Array) -> Array:
        return nn.bicubic_resize(x, x.shape[1] * scale, x.shape[2] * scale)

    return nn.stateless("bicubic", fn, lambda s: (s[0] * scale, s[1] * scale, s[2]))


def _three_convs(
    name: str, scale: int, features: Sequence[int], kernel_sizes: Sequence[int], out: int, activation: str
) -> list[nn.Layer]:
    """The three SAME convolutions ``conv1``-``conv3`` of SRCNN and ESPCN (``features`` maps, then ``out``), with
    ``activation`` after the first two; checks the sizes."""
    check_sizes(name, scale=scale, features=features, kernel_sizes=kernel_sizes)
    if len(features) != 2 or len(kernel_sizes) != 3:
        raise ValueError(f"{name}: features takes 2 sizes and kernel_sizes 3; got {features!r}, {kernel_sizes!r}")
    widths = (*features, out)
    layers: list[nn.Layer] = []
    for i, (width, k) in enumerate(zip(widths, kernel_sizes, strict=True)):
        layers.append(nn.conv2d(width, k, padding="SAME", name=f"conv{i + 1}"))
        if i < 2:
            layers.append(nn.activation(activation))
    return layers


def srcnn(
    input_shape: Shape = (33, 33, 1),
    num_classes: int | None = None,
    scale: int = 1,
    features: Sequence[int] = (64, 32),
    kernel_sizes: Sequence[int] = (9, 1, 5),
    name: str = "srcnn",
) -> Model:
    """SRCNN 9-1-5 with 64 and 32 filters (Dong et al. 2014; the paper's base model). ``scale=1``: on
    ``input_shape`` images that are bicubic enlargements of low-resolution ones (33x33 sub-images in the paper),
    output the same shape; ``scale > 1``: on low-resolution images, enlarged ``scale`` times by a fixed bicubic first
    layer. ``num_classes`` is ignored (the targets are images). Params ``conv1``, ``conv2``, ``conv3``."""
    del num_classes
    h, w, c = _check_image_shape(name, input_shape)
    convs = _three_convs(name, scale, features, kernel_sizes, c, "relu")
    layer = nn.serial(*([_bicubic_enlargement(scale)] if scale > 1 else []), *convs, name=name)
    return Model(name, layer, (h, w, c), head="linear", objective=SuperResolution(scale))


def espcn(
    input_shape: Shape = (17, 17, 1),
    num_classes: int | None = None,
    scale: int = 3,
    features: Sequence[int] = (64, 32),
    kernel_sizes: Sequence[int] = (5, 3, 3),
    name: str = "espcn",
) -> Model:
    """ESPCN (Shi et al. 2016): (5, 64) -> tanh -> (3, 32) -> tanh -> (3, channels * scale**2) -> pixel shuffle, on
    low-resolution ``input_shape`` images (17x17 in the paper); output ``scale`` times larger. ``num_classes`` is
    ignored. Params ``conv1``, ``conv2``, ``conv3``."""
    del num_classes
    h, w, c = _check_image_shape(name, input_shape)
    convs = _three_convs(name, scale, features, kernel_sizes, c * scale * scale, "tanh")
    layer = nn.serial(*convs, nn.pixel_shuffle(scale), name=name)
    return Model(name, layer, (h, w, c), head="linear", objective=SuperResolution(scale))


def upscale(model: Model, params: PyTree, state: PyTree, x: Array) -> Array:
    """The model's high-resolution images for a batch ``x`` of inputs of any size (the convolutions do not depend on
    it), clipped to [0, 1]."""
    outputs, _ = model.layer.apply(params, state, jnp.asarray(x, jnp.float32))
    return jnp.clip(outputs, 0.0, 1.0)
