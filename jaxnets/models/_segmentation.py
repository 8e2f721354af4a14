"""Semantic segmentation: FCN (Long, Shelhamer & Darrell 2015) and U-Net (Ronneberger, Fischer & Brox 2015), scaled
to small canvases, with a per-pixel softmax cross-entropy objective and the metrics pixel accuracy and mean IoU.

Mean IoU is a dataset-level figure, not a mean of per-example values: evaluation reports each example's per-class
intersection and union pixel counts, ``fit``/``train.evaluate`` sum them over the whole test set, and the model's
``finalize`` (``segmentation_summary``) turns the totals into the mean over classes of intersection / union (classes
absent from both the predictions and the labels are left out).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxnets import nn
from jaxnets.losses import softmax_cross_entropy
from jaxnets.models._base import Model, check_sizes
from jaxnets.nn import Layer, PyTree, Shape

COUNTS = ("intersection", "union")  # the per-class counts evaluation reports, reduced by segmentation_summary


def class_counts(predicted: jax.Array, masks: jax.Array, num_classes: int) -> tuple[jax.Array, jax.Array]:
    """Per-example, per-class pixel counts ``(intersection, union)``, each ``(batch, num_classes)`` float32, of the
    predicted class maps and the true ``masks`` (integer arrays of one shape, batch first)."""
    classes = jnp.arange(num_classes)
    p, t = predicted[..., None] == classes, masks[..., None] == classes
    axes = tuple(range(1, predicted.ndim))
    return jnp.sum(p & t, axes, dtype=jnp.float32), jnp.sum(p | t, axes, dtype=jnp.float32)


def mean_iou(intersection: jax.Array, union: jax.Array) -> jax.Array:
    """Mean over classes of ``intersection / union`` (totals per class, last axis), over the classes whose union is
    not empty (present in the predictions or the labels); 0 if none is."""
    present = union > 0
    iou = jnp.where(present, intersection / jnp.where(present, union, 1), 0.0)
    return iou.sum(-1) / jnp.maximum(present.sum(-1), 1)


def segmentation_summary(means: dict[str, jax.Array]) -> dict[str, jax.Array]:
    """A segmentation model's ``finalize``: the test-set means with the per-class counts replaced by ``mean_iou``."""
    out = {k: v for k, v in means.items() if k not in COUNTS}
    return {**out, "mean_iou": mean_iou(means["intersection"], means["union"])}


def pixel_cross_entropy(
    model: Model, params: PyTree, state: PyTree, x: jax.Array, y: jax.Array, *, key=None, train: bool = False
) -> tuple[dict[str, jax.Array], PyTree]:
    """Objective of a segmentation model: per example, the mean over pixels of the softmax cross-entropy of the
    logits (batch, H, W, classes) against the class masks ``y`` (batch, H', W'), centre-cropped to H x W when the
    network's output is smaller (unpadded U-Net), and the pixel accuracy; in evaluation also the per-class
    intersection and union counts (``class_counts``) that ``segmentation_summary`` makes mean IoU of."""
    if not jnp.issubdtype(jnp.result_type(y), jnp.integer) or np.ndim(y) != np.ndim(x) - 1:
        raise ValueError(
            f"{model.name}: y must be integer class masks of shape (batch, height, width); got "
            f"{jnp.result_type(y)} of shape {np.shape(y)}"
        )
    logits, state = model.apply(params, state, x, key=key, train=train)
    y = nn.center_crop(y, logits.shape[1:-1])
    predicted = jnp.argmax(logits, -1)
    per_pixel = softmax_cross_entropy(logits, y)
    metrics = {
        "loss": per_pixel.reshape(len(y), -1).mean(1),
        "pixel_accuracy": (predicted == y).reshape(len(y), -1).mean(1, dtype=jnp.float32),
    }
    if not train:
        metrics.update(zip(COUNTS, class_counts(predicted, y, logits.shape[-1]), strict=True))
    return metrics, state


def bilinear_init(key: jax.Array, shape: Sequence[int], dtype: Any = jnp.float32, out_sharding=None) -> jax.Array:
    """Initial kernel ``(k, k, in, out)`` of a transposed convolution that upsamples each channel bilinearly (channel
    ``i`` to output ``i``, no mixing), as FCN initialises its learned 2x upsampling."""
    del key, out_sharding
    k = shape[0]
    factor = (k + 1) // 2
    centre = factor - 1 if k % 2 == 1 else factor - 0.5
    ramp = 1 - np.abs(np.arange(k) - centre) / factor
    kernel = np.zeros(shape, np.float32)
    for i in range(min(shape[-2], shape[-1])):
        kernel[:, :, i, i] = np.outer(ramp, ramp)
    return jnp.asarray(kernel, dtype)


def _convs(features: int, count: int, padding: str, name: str, batch_norm: bool = False) -> list[Layer]:
    """``count`` 3x3 convolutions + ReLU; with ``batch_norm``, each convolution (without bias) batch-normalised."""
    he = nn.initializers.he_normal()
    out: list[Layer] = []
    for i in range(count):
        out.append(nn.conv2d(features, 3, padding=padding, use_bias=not batch_norm, w_init=he, name=f"{name}_{i + 1}"))
        out += [nn.batch_norm(name=f"{name}_bn{i + 1}")] if batch_norm else []
        out.append(nn.activation("relu"))
    return out


def _check_image(name: str, input_shape: Shape, num_classes: int, channels: Sequence[int]) -> None:
    check_sizes(name, num_classes=num_classes, channels=channels)
    if len(input_shape) != 3:
        raise ValueError(f"{name} takes images of shape (height, width, channels); got input_shape {input_shape}")


def fcn(
    input_shape: Shape = (64, 64, 1),
    num_classes: int = 11,
    channels: Sequence[int] = (32, 64, 128, 128, 256),
    fc: int = 256,
) -> Model:
    """FCN-8s (Long et al. 2015) scaled to small canvases: a VGG-style backbone of five blocks (two 3x3 convs and a
    2x2 max-pool each, ``channels``), 'fully connected' 1x1 convs fc6 and fc7 (``fc`` maps), class scores at strides
    32, 16 (pool4) and 8 (pool3) fused by learned 2x transposed convolutions (4x4, initialised bilinear) and a fixed
    bilinear 8x upsampling to the input size. Height and width must be multiples of 32; SAME padding throughout
    (the paper pads its input by 100 and crops instead)."""
    _check_image("fcn", input_shape, num_classes, channels)
    check_sizes("fcn", fc=fc)
    if len(channels) != 5:
        raise ValueError(f"fcn: channels must give the 5 blocks' maps; got {tuple(channels)}")
    if any(d % 32 for d in input_shape[:2]):
        raise ValueError(f"fcn: input height and width must be multiples of 32; got input_shape {tuple(input_shape)}")
    blocks = [
        nn.serial(*_convs(c, 2, "SAME", f"conv{i + 1}"), nn.max_pool(2), name=f"block{i + 1}")
        for i, c in enumerate(channels)
    ]

    def score(name: str) -> Layer:
        return nn.conv2d(num_classes, 1, w_init=nn.initializers.zeros, name=name)

    def up2(name: str) -> Layer:
        return nn.conv_transpose(num_classes, 4, stride=2, padding=1, use_bias=False, w_init=bilinear_init, name=name)

    he = nn.initializers.he_normal()
    stride32 = nn.serial(
        blocks[4],
        nn.conv2d(fc, 1, w_init=he, name="fc6"),
        nn.activation("relu"),
        nn.conv2d(fc, 1, w_init=he, name="fc7"),
        nn.activation("relu"),
        nn.conv2d(num_classes, 1, name="score32"),
        up2("up32"),
        name="stride32",
    )
    stride16 = nn.serial(
        blocks[3], nn.residual(stride32, score("score16"), name="fuse16"), up2("up16"), name="stride16"
    )
    layer = nn.serial(
        *blocks[:3],
        nn.residual(stride16, score("score8"), name="fuse8"),
        nn.upsample(8, method="bilinear", name="up8"),
        name="fcn",
    )
    return Model("fcn", layer, tuple(input_shape), objective=pixel_cross_entropy, finalize=segmentation_summary)


def unet(
    input_shape: Shape = (64, 64, 1),
    num_classes: int = 11,
    channels: Sequence[int] = (16, 32, 64, 128),
    padding: str = "SAME",
    batch_norm: bool = False,
) -> Model:
    """U-Net (Ronneberger et al. 2015) scaled to small canvases: ``len(channels)`` levels of two 3x3 convs + ReLU,
    2x2 max-pooling down, 2x2 stride-2 up-convolutions halving the maps, crop-and-concatenate skips
    (``nn.skip_concat``), a 1x1 conv to the class scores. The paper uses 5 levels of 64-1024 maps and unpadded
    ('VALID') convolutions, whose output is smaller than the input (the objective scores the masks' centre);
    'SAME' (the default here) keeps the input size. ``batch_norm`` puts batch normalisation between each 3x3 conv
    and its ReLU, as the 3D U-Net (Cicek et al. 2016) does (not in the 2015 paper)."""
    _check_image("unet", input_shape, num_classes, channels)
    if padding not in ("SAME", "VALID"):
        raise ValueError(f"unet: padding must be 'SAME' or 'VALID'; got {padding!r}")

    def level(i: int) -> Layer:
        convs = _convs(channels[i], 2, padding, f"down{i + 1}", batch_norm)
        if i == len(channels) - 1:
            return nn.serial(*convs, name=f"level{i + 1}")
        deeper = nn.serial(
            nn.max_pool(2),
            level(i + 1),
            nn.conv_transpose(channels[i], 2, stride=2, padding="VALID", name=f"upconv{i + 1}"),
            name="deeper",
        )
        up = _convs(channels[i], 2, padding, f"up{i + 1}", batch_norm)
        return nn.serial(*convs, nn.skip_concat(deeper, name="skip"), *up, name=f"level{i + 1}")

    layer = nn.serial(level(0), nn.conv2d(num_classes, 1, name="score"), name="unet")
    return Model("unet", layer, tuple(input_shape), objective=pixel_cross_entropy, finalize=segmentation_summary)
