"""Residual networks (He, Zhang, Ren & Sun 2015, "Deep residual learning for image recognition").

ImageNet ResNet-18/34/50 in torchvision's layout (basic blocks for 18/34, bottleneck blocks for 50, the stride on
the bottleneck's 3x3 convolution as in torchvision's "v1.5", batch norm after every convolution, projection
shortcuts where the shape changes), and the paper's CIFAR ResNet-20 (section 4.2: three stages of 16/32/64 maps).
Batch-norm running statistics are model state: ``apply(..., train=True)`` normalises with the batch's statistics
and returns updated running averages; ``train=False`` normalises with the running averages and returns them as is.

For the analyses of residual networks, ``cifar_resnet(shortcut=None)`` is He et al.'s plain network of the same
depth (the same layers, no shortcuts), and ``cifar_resnet(deleted=...)`` is Veit, Wilber & Belongie (2016)'s lesion:
the named blocks become the identity, keeping their parameters, so a trained network's parameters apply unchanged.
For a residual block that is exactly the block without its residual branch (relu(x + 0) = x, its input being a
ReLU's output); for a plain block it removes the layer. Only blocks that keep the shape can be deleted
(``deletable_blocks``): in ResNet-20 all but the first blocks of the second and third stages.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import jax
import jax.numpy as jnp

from jaxnets import nn
from jaxnets.models._base import Model, check_sizes
from jaxnets.models._zoo import conv_unit, image_shape, use_small_input
from jaxnets.nn import Layer, Shape

# depth -> (block, blocks per stage); Table 1 of the paper.
DEPTHS: dict[int, tuple[str, tuple[int, int, int, int]]] = {
    18: ("basic", (2, 2, 2, 2)),
    34: ("basic", (3, 4, 6, 3)),
    50: ("bottleneck", (3, 4, 6, 3)),
    101: ("bottleneck", (3, 4, 23, 3)),
    152: ("bottleneck", (3, 8, 36, 3)),
}
EXPANSION = {"basic": 1, "bottleneck": 4}
SHORTCUTS = ("A", "B")


def _projection(features: int, stride: int) -> Layer:
    """Option B shortcut: 1x1 convolution (with the block's stride) and batch norm, no ReLU."""
    return conv_unit(features, 1, stride=stride, padding=0, bn=True, relu=False, name="proj")


def _zero_pad_shortcut(in_channels: int, features: int, stride: int) -> Layer:
    """Option A shortcut: the identity subsampled by ``stride`` with zero maps appended up to ``features``."""
    extra = features - in_channels
    if extra < 0:
        raise ValueError(f"an option A shortcut can only add channels; got {in_channels} -> {features}")

    def fn(x):
        x = x[:, ::stride, ::stride, :]
        return jnp.pad(x, ((0, 0), (0, 0), (0, 0), (0, extra)))

    return nn.stateless("zero_pad", fn, lambda s: (*(-(-n // stride) for n in s[:-1]), features))


def basic_block(
    features: int, stride: int = 1, *, shortcut: Layer | None = None, plain: bool = False, name: str = "block"
) -> Layer:
    """conv3x3(stride) -> BN -> ReLU -> conv3x3 -> BN, plus the shortcut (identity by default), then ReLU.
    ``plain``: without any shortcut (a block of He et al.'s plain network)."""
    body = nn.serial(
        conv_unit(features, 3, stride=stride, bn=True, name="conv1"),
        conv_unit(features, 3, bn=True, relu=False, name="conv2"),
        name="body",
    )
    if plain:
        if shortcut is not None:
            raise ValueError(f"{name}: a plain block has no shortcut; got plain=True and a shortcut")
        return nn.serial(body, nn.activation("relu"), name=name)
    return nn.serial(nn.residual(body, shortcut, name="residual"), nn.activation("relu"), name=name)


def bottleneck_block(width: int, stride: int = 1, *, shortcut: Layer | None = None, name: str = "block") -> Layer:
    """conv1x1 (width) -> BN -> ReLU -> conv3x3 (width, stride) -> BN -> ReLU -> conv1x1 (4 width) -> BN, plus the
    shortcut, then ReLU: 4 x ``width`` output maps."""
    body = nn.serial(
        conv_unit(width, 1, bn=True, name="conv1"),
        conv_unit(width, 3, stride=stride, bn=True, name="conv2"),
        conv_unit(EXPANSION["bottleneck"] * width, 1, bn=True, relu=False, name="conv3"),
        name="body",
    )
    return nn.serial(nn.residual(body, shortcut, name="residual"), nn.activation("relu"), name=name)


def _deleted(block: Layer) -> Layer:
    """``block`` made the identity: the same parameters and state (so trained ones apply), its input as output."""

    def apply(params, state, x, *, key=None, train=False):
        del params, key, train
        return x, state

    return Layer(block.init, apply, block.name)


def _stage(
    kind: str,
    in_channels: int,
    width: int,
    blocks: int,
    stride: int,
    shortcut: str | None,
    name: str,
    deleted: frozenset[str] = frozenset(),
) -> tuple[Layer, int]:
    """``blocks`` residual blocks (plain ones for ``shortcut=None``), the first with ``stride``, those whose path
    ``name/block<i>`` is in ``deleted`` made the identity; returns the stage and its output channels."""
    out = EXPANSION[kind] * width
    layers = []
    for i in range(blocks):
        s = stride if i == 0 else 1
        sc = None
        if shortcut is not None and (s != 1 or in_channels != out):
            sc = _projection(out, s) if shortcut == "B" else _zero_pad_shortcut(in_channels, out, s)
        if kind == "basic":
            block = basic_block(width, s, shortcut=sc, plain=shortcut is None, name=f"block{i}")
        else:
            block = bottleneck_block(width, s, shortcut=sc, name=f"block{i}")
        layers.append(_deleted(block) if f"{name}/block{i}" in deleted else block)
        in_channels = out
    return nn.serial(*layers, name=name), out


def deletable_blocks(model: Model) -> tuple[str, ...]:
    """The blocks of a ResNet (or its plain twin) that keep their input's shape, as ``'layer<s>/block<i>'`` paths:
    those that ``cifar_resnet(deleted=...)`` can make the identity (in ResNet-20, all but ``layer2/block0`` and
    ``layer3/block0``, which halve the map and double the channels)."""
    found: list[str] = []

    def record(path: tuple[str, ...], in_shape: Shape, out_shape: Shape, params, state) -> None:
        del params, state
        if len(path) == 2 and path[0].startswith("layer") and path[1].startswith("block") and in_shape == out_shape:
            found.append("/".join(path))

    with nn.recording_init(record):
        jax.eval_shape(model.init, jax.ShapeDtypeStruct((2,), jnp.uint32))
    return tuple(found)


def block_norms(norms: Mapping[str, float]) -> dict[str, float]:
    """Per-layer norms of a ResNet or its plain twin (``analysis.layer_gradient_norms``' ``'layer1/block0/...'``
    names) combined into one per block, ``'layer<s>/block<i>'``, and one per other top-level layer (``'conv1'``,
    ``'fc'``): the root of the sum of the squares, i.e. the L2 norm of all of that block's entries, input to output.
    For He et al.'s and Veit et al.'s point that gradients reach the early blocks of a residual network through the
    identity paths."""
    squares: dict[str, float] = {}
    for name, value in norms.items():
        parts = name.split("/")
        in_block = len(parts) > 2 and parts[0].startswith("layer") and parts[1].startswith("block")
        key = "/".join(parts[:2]) if in_block else parts[0]
        squares[key] = squares.get(key, 0.0) + float(value) ** 2
    return {key: math.sqrt(total) for key, total in squares.items()}


def resnet(
    depth: int = 18,
    input_shape: Shape = (224, 224, 3),
    num_classes: int = 1000,
    *,
    small_input: bool | None = None,
    width: int = 64,
    blocks: tuple[int, int, int, int] | None = None,
) -> Model:
    """ImageNet ResNet of a given depth (18, 34, 50, 101 or 152) in torchvision's layout.

    Stem conv 7x7/2 (64) -> BN -> ReLU -> max-pool 3x3/2 (pad 1); four stages of 64/128/256/512 maps (bottleneck
    blocks output 4x that), the first stride 1 and the others 2, with projection shortcuts (option B) where the shape
    changes; global average pooling; fc. Parameters at 224x224x3, 1000 classes: 11,689,512 (18), 21,797,672 (34),
    25,557,032 (50). ``small_input`` (default: images under 64 pixels a side) makes the stem one 3x3/1 convolution
    without max-pooling (the usual CIFAR adaptation). ``width`` is the first stage's width (64); ``blocks``
    overrides the number of blocks per stage (keeping the depth's block type), for reduced networks in quick tests.
    """
    if depth not in DEPTHS:
        raise ValueError(f"no ResNet of depth {depth}; choose one of {sorted(DEPTHS)}")
    kind, default_blocks = DEPTHS[depth]
    stages: tuple[int, ...] = default_blocks if blocks is None else tuple(blocks)
    if len(stages) != 4 or any(n < 1 for n in stages):
        raise ValueError(f"blocks must give four stages of at least one block each; got {stages}")
    name = f"resnet{depth}"
    h, w, c = image_shape(name, input_shape)
    check_sizes(name, num_classes=num_classes, width=width)
    if use_small_input((h, w, c), small_input):
        stem = [conv_unit(width, 3, bn=True, name="conv1")]
    else:
        stem = [
            conv_unit(width, 7, stride=2, padding=3, bn=True, name="conv1"),
            nn.max_pool(3, stride=2, padding=1, name="maxpool"),
        ]
    layers, channels = [*stem], width
    for i, n in enumerate(stages):
        stage, channels = _stage(kind, channels, width * 2**i, n, 1 if i == 0 else 2, "B", f"layer{i + 1}")
        layers.append(stage)
    layers += [
        nn.global_avg_pool(name="avgpool"),
        nn.dense(num_classes, w_init=nn.initializers.glorot_uniform(), name="fc"),
    ]
    return Model(name, nn.serial(*layers, name=name), (h, w, c))


def resnet18(input_shape: Shape = (224, 224, 3), num_classes: int = 1000, **options) -> Model:
    """ResNet-18: basic blocks 2-2-2-2; see ``resnet`` for the options."""
    return resnet(18, input_shape, num_classes, **options)


def resnet34(input_shape: Shape = (224, 224, 3), num_classes: int = 1000, **options) -> Model:
    """ResNet-34: basic blocks 3-4-6-3; see ``resnet`` for the options."""
    return resnet(34, input_shape, num_classes, **options)


def resnet50(input_shape: Shape = (224, 224, 3), num_classes: int = 1000, **options) -> Model:
    """ResNet-50: bottleneck blocks 3-4-6-3; see ``resnet`` for the options."""
    return resnet(50, input_shape, num_classes, **options)


def cifar_resnet(
    depth: int = 20,
    input_shape: Shape = (32, 32, 3),
    num_classes: int = 10,
    *,
    shortcut: str | None = "A",
    widths: tuple[int, int, int] = (16, 32, 64),
    deleted: Sequence[str] = (),
) -> Model:
    """The paper's CIFAR-10 ResNet (section 4.2) of depth 6n + 2 (20, 32, 44, 56, 110, ...).

    conv3x3 (16) -> BN -> ReLU; three stages of n basic blocks with 16, 32, 64 maps (stride 2 entering the second
    and third); global average pooling; fc. ``shortcut="A"`` (the paper's choice for CIFAR): where the shape changes
    the identity is subsampled and zero-padded with extra maps, adding no parameters (ResNet-20: 269,722 parameters
    with 10 classes, the paper's "0.27M"); ``"B"``: a 1x1 convolution + batch norm projection there (272,474);
    ``None``: no shortcuts, the paper's plain network of the same depth (named ``plain<depth>``).

    ``deleted``: blocks (``'layer<s>/block<i>'``, ``i`` from 0) made the identity, with their parameters kept, so a
    trained network's parameters and state apply to the lesioned one (Veit et al. 2016); only blocks that keep the
    shape qualify (``deletable_blocks``).
    """
    if depth < 8 or (depth - 2) % 6:
        raise ValueError(f"a CIFAR ResNet has depth 6n + 2 (20, 32, 44, 56, 110, ...); got {depth}")
    if shortcut is not None:
        shortcut = str(shortcut).upper()
        if shortcut not in SHORTCUTS:
            raise ValueError(
                f"shortcut must be 'A' (zero-padding identity), 'B' (projection) or None (plain); got {shortcut!r}"
            )
    name = f"resnet{depth}" if shortcut is not None else f"plain{depth}"
    h, w, c = image_shape(name, input_shape)
    check_sizes(name, num_classes=num_classes, widths=widths)
    n = (depth - 2) // 6
    deleted = (deleted,) if isinstance(deleted, str) else tuple(deleted)
    layers, channels = [conv_unit(widths[0], 3, bn=True, name="conv1")], widths[0]
    for i, width in enumerate(widths):
        stage, channels = _stage(
            "basic", channels, width, n, 1 if i == 0 else 2, shortcut, f"layer{i + 1}", frozenset(deleted)
        )
        layers.append(stage)
    layers += [
        nn.global_avg_pool(name="avgpool"),
        nn.dense(num_classes, w_init=nn.initializers.glorot_uniform(), name="fc"),
    ]
    model = Model(name, nn.serial(*layers, name=name), (h, w, c))
    unknown = sorted(set(deleted) - set(deletable_blocks(model))) if deleted else []
    if unknown:
        raise ValueError(
            f"{name}: deleted block {unknown[0]!r} does not exist or changes the shape; only these can be deleted: "
            f"{', '.join(deletable_blocks(model))}"
        )
    return model


def resnet20(input_shape: Shape = (32, 32, 3), num_classes: int = 10, **options) -> Model:
    """The paper's CIFAR ResNet-20 (n = 3), option A shortcuts by default; see ``cifar_resnet`` for the options."""
    return cifar_resnet(20, input_shape, num_classes, **options)
