"""Shared pieces of the ImageNet-era CNN builders (alexnet, vgg, googlenet, resnet): input checks and conv units."""

from __future__ import annotations

from jaxnets import nn
from jaxnets.nn import Layer, Shape

# Images at least this large (height and width) get the ImageNet layout by default, smaller ones the small-input one.
SMALL_INPUT_BELOW = 64


def image_shape(model: str, input_shape: Shape) -> tuple[int, int, int]:
    """``input_shape`` as (height, width, channels), or a one-line ``ValueError`` naming the model."""
    if len(input_shape) != 3 or any(int(d) < 1 for d in input_shape):
        raise ValueError(f"{model} takes images of shape (height, width, channels); got input_shape {input_shape}")
    h, w, c = (int(d) for d in input_shape)
    return h, w, c


def use_small_input(input_shape: Shape, small_input: bool | None) -> bool:
    """The small-input (CIFAR/MNIST) layout: as asked, or by default when the image is under 64 pixels a side."""
    return min(input_shape[:2]) < SMALL_INPUT_BELOW if small_input is None else bool(small_input)


def scaled(channels: int, width: float) -> int:
    """A channel count times a width multiplier, at least 1."""
    return max(1, round(channels * width))


def conv_unit(
    features: int,
    kernel: int,
    *,
    stride: int = 1,
    padding: int | None = None,
    bn: bool = False,
    bn_eps: float = 1e-5,
    relu: bool = True,
    name: str = "conv",
) -> Layer:
    """conv (He-normal weights; symmetric padding kernel//2 by default, as PyTorch) [-> batch norm] [-> ReLU].

    With batch norm the convolution has no bias (the norm's shift replaces it), as in every torchvision model.
    Parameter keys: ``conv`` (``w``, and ``b`` without batch norm) and ``bn`` (``scale``, ``bias``).
    """
    padding = kernel // 2 if padding is None else padding
    layers = [
        nn.conv2d(
            features,
            kernel,
            stride=stride,
            padding=padding,
            use_bias=not bn,
            w_init=nn.initializers.he_normal(),
            name="conv",
        )
    ]
    if bn:
        layers.append(nn.batch_norm(eps=bn_eps, name="bn"))
    if relu:
        layers.append(nn.activation("relu"))
    return nn.serial(*layers, name=name)


def classifier(
    hidden: tuple[int, ...], num_classes: int, dropout: float, *, dropout_after: bool = False
) -> list[Layer]:
    """The fully connected head as a list of layers: per hidden width dropout -> fc -> ReLU (AlexNet's order) or
    fc -> ReLU -> dropout (``dropout_after``, VGG's), then the logits.

    The dense layers are named ``fc1``, ``fc2``, ... (He-normal weights before a ReLU, Glorot-uniform for the logits);
    dropout is left out when its rate is 0.
    """
    layers: list[Layer] = []
    for i, width in enumerate(hidden, start=1):
        drop = [nn.dropout(dropout, name=f"dropout{i}")] if dropout else []
        fc = [nn.dense(width, w_init=nn.initializers.he_normal(), name=f"fc{i}"), nn.activation("relu")]
        layers += fc + drop if dropout_after else drop + fc
    layers.append(nn.dense(num_classes, w_init=nn.initializers.glorot_uniform(), name=f"fc{len(hidden) + 1}"))
    return layers
