"""VGG-11/13/16/19 (Simonyan & Zisserman 2014) from the paper's configuration letters, with optional batch norm."""

from __future__ import annotations

from jaxnets import nn
from jaxnets.models._base import Model, check_sizes
from jaxnets.models._zoo import classifier, image_shape, use_small_input
from jaxnets.nn import Layer, Shape

# Table 1 of the paper: 3x3 convolutions per stage (a 2x2/2 max-pool ends each of the five stages).
CONFIGS: dict[str, tuple[int, int, int, int, int]] = {
    "A": (1, 1, 2, 2, 2),  # VGG-11
    "B": (2, 2, 2, 2, 2),  # VGG-13
    "D": (2, 2, 3, 3, 3),  # VGG-16
    "E": (2, 2, 4, 4, 4),  # VGG-19
}
DEPTHS = {11: "A", 13: "B", 16: "D", 19: "E"}
NAMES = {letter: f"vgg{depth}" for depth, letter in DEPTHS.items()}


def vgg(
    config: str | int = "D",
    input_shape: Shape = (224, 224, 3),
    num_classes: int = 1000,
    *,
    batch_norm: bool = False,
    small_input: bool | None = None,
    widths: tuple[int, int, int, int, int] = (64, 128, 256, 512, 512),
    hidden: tuple[int, ...] | None = None,
    dropout: float = 0.5,
) -> Model:
    """VGG from a configuration letter ('A', 'B', 'D', 'E') or its depth (11, 13, 16, 19).

    Five stages of 3x3 convolutions (pad 1) with ReLU, ``widths`` 64-128-256-512-512 maps, each stage ended by a
    2x2/2 max-pool; then (torchvision's layout) adaptive average pooling to 7x7 and fc 4096 -> ReLU -> dropout twice
    and the logits: VGG-11 has 132,863,336 parameters and VGG-16 138,357,544 at 224x224x3 with 1000 classes.
    ``batch_norm=True`` puts a batch norm between each convolution and its ReLU (torchvision's ``vgg*_bn``: the
    convolutions keep their biases).

    ``small_input`` (default: images under 64 pixels a side) pools with 'SAME' padding (any size >= 1 works: 28x28
    goes 14, 7, 4, 2, 1), drops the adaptive pooling and makes the hidden layers 512 wide unless ``hidden`` is given.
    """
    letter = DEPTHS.get(config, config) if isinstance(config, int) else str(config).upper()
    if letter not in CONFIGS:
        raise ValueError(
            f"unknown VGG configuration {config!r}; choose a letter {sorted(CONFIGS)} or a depth {sorted(DEPTHS)}"
        )
    name = NAMES[letter] + ("_bn" if batch_norm else "")
    h, w, c = image_shape(name, input_shape)
    small = use_small_input((h, w, c), small_input)
    check_sizes(name, num_classes=num_classes, widths=widths, hidden=hidden)
    hidden = tuple(hidden) if hidden is not None else ((512, 512) if small else (4096, 4096))
    he = nn.initializers.he_normal()
    layers: list[Layer] = []
    for stage, (n, width) in enumerate(zip(CONFIGS[letter], widths, strict=True), start=1):
        for i in range(1, n + 1):
            layers.append(nn.conv2d(width, 3, padding=1, w_init=he, name=f"conv{stage}_{i}"))
            if batch_norm:
                layers.append(nn.batch_norm(name=f"bn{stage}_{i}"))
            layers.append(nn.activation("relu"))
        layers.append(nn.max_pool(2, padding="SAME" if small else "VALID", name=f"pool{stage}"))
    if not small:
        layers.append(nn.adaptive_avg_pool(7, name="avgpool"))
    layers += [nn.flatten(), *classifier(hidden, num_classes, dropout, dropout_after=True)]
    return Model(name, nn.serial(*layers, name=name), (h, w, c))


def vgg11(input_shape: Shape = (224, 224, 3), num_classes: int = 1000, **options) -> Model:
    """VGG-11 (configuration A): 8 convolutions and 3 fully connected layers; see ``vgg`` for the options."""
    return vgg("A", input_shape, num_classes, **options)


def vgg13(input_shape: Shape = (224, 224, 3), num_classes: int = 1000, **options) -> Model:
    """VGG-13 (configuration B): 10 convolutions and 3 fully connected layers; see ``vgg`` for the options."""
    return vgg("B", input_shape, num_classes, **options)


def vgg16(input_shape: Shape = (224, 224, 3), num_classes: int = 1000, **options) -> Model:
    """VGG-16 (configuration D): 13 convolutions and 3 fully connected layers; see ``vgg`` for the options."""
    return vgg("D", input_shape, num_classes, **options)


def vgg19(input_shape: Shape = (224, 224, 3), num_classes: int = 1000, **options) -> Model:
    """VGG-19 (configuration E): 16 convolutions and 3 fully connected layers; see ``vgg`` for the options."""
    return vgg("E", input_shape, num_classes, **options)
