"""AlexNet (Krizhevsky, Sutskever & Hinton 2012), single tower, in torchvision's layout and a small-input one."""

from __future__ import annotations

from jaxnets import nn
from jaxnets.models._base import Model, check_sizes
from jaxnets.models._zoo import classifier, image_shape, use_small_input
from jaxnets.nn import Layer, Shape


def alexnet(
    input_shape: Shape = (224, 224, 3),
    num_classes: int = 1000,
    *,
    small_input: bool | None = None,
    channels: tuple[int, int, int, int, int] = (64, 192, 384, 256, 256),
    hidden: tuple[int, ...] | None = None,
    dropout: float = 0.5,
    lrn: bool = False,
    pool_size: int | None = 6,
) -> Model:
    """AlexNet: five convolutions with ReLU, overlapping 3x3/2 max-pooling after conv1, conv2 and conv5, then
    dropout -> fc -> ReLU twice and the logits.

    The default is torchvision's single-tower layout (conv1 64@11x11/4 pad 2, conv2 192@5x5, conv3-5 384, 256,
    256@3x3, adaptive average pooling to ``pool_size`` x ``pool_size`` = 6x6, fc 4096-4096): 61,100,840 parameters at
    224x224x3 with 1000 classes. The paper's two GPU towers had 48/128/192/192/128 maps each (96/256/384/384/256 in
    all). ``lrn=True`` adds the paper's local response normalisation (k=2, n=5, alpha=1e-4, beta=0.75) after the ReLUs
    of conv1 and conv2, as the paper did (torchvision has none).

    ``small_input`` (default: images under 64 pixels a side, e.g. 32x32 CIFAR or 28x28 MNIST; at least 15x15) makes
    conv1 a 3x3/1 convolution, drops the adaptive pooling, and makes the hidden layers 1024 wide unless ``hidden``
    is given. ``channels`` sets the five convolutions' widths.
    """
    h, w, c = image_shape("alexnet", input_shape)
    small = use_small_input((h, w, c), small_input)
    if len(channels) != 5:
        raise ValueError(f"alexnet has five convolutions; got channels {channels}")
    check_sizes("alexnet", num_classes=num_classes, channels=channels, hidden=hidden)
    hidden = tuple(hidden) if hidden is not None else ((1024, 1024) if small else (4096, 4096))
    he = nn.initializers.he_normal()

    def conv(i: int, kernel: int, stride: int = 1) -> list[Layer]:
        return [
            nn.conv2d(
                channels[i - 1],
                kernel,
                stride=stride,
                padding=kernel // 2 if kernel != 11 else 2,
                w_init=he,
                name=f"conv{i}",
            ),
            nn.activation("relu"),
        ]

    def norm(i: int) -> list[Layer]:
        return [nn.lrn(name=f"lrn{i}")] if lrn else []

    layers = [
        *(conv(1, 3) if small else conv(1, 11, stride=4)),
        *norm(1),
        nn.max_pool(3, stride=2, name="pool1"),
        *conv(2, 5),
        *norm(2),
        nn.max_pool(3, stride=2, name="pool2"),
        *conv(3, 3),
        *conv(4, 3),
        *conv(5, 3),
        nn.max_pool(3, stride=2, name="pool5"),
    ]
    if not small and pool_size:
        layers.append(nn.adaptive_avg_pool(pool_size, name="avgpool"))
    layers += [nn.flatten(), *classifier(hidden, num_classes, dropout)]
    return Model("alexnet", nn.serial(*layers, name="alexnet"), (h, w, c))
