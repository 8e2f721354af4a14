"""GoogLeNet (Szegedy et al. 2014, "Going deeper with convolutions") from its inception block.

Two layouts: ``"torchvision"`` (the default; every convolution without bias followed by a batch norm with eps 1e-3,
and the "5x5" branch a 3x3 convolution, a known quirk of torchvision's GoogLeNet kept for parity: 6,624,904
parameters at 224x224x3 with 1000 classes, without the auxiliary heads) and ``"paper"`` (5x5 convolutions with
biases, no batch norm, local response normalisation in the stem, dropout 0.4: 6,998,552 parameters).

The auxiliary classifiers are left out of ``googlenet``: they exist for training only. ``googlenet_aux`` builds the
network with them: its output stacks the three logits, and its objective (``Model.metrics``) is the paper's main
loss + 0.3 x each auxiliary loss, so ``train.make_train_step`` and ``train.fit`` train it as they train any model;
for inference, ``googlenet`` (same options) takes ``main_params(params)`` and ``main_params(state)``.
"""

from __future__ import annotations

from dataclasses import dataclass

import jax
import jax.numpy as jnp

from jaxnets import losses, nn
from jaxnets.models._base import Model, check_sizes
from jaxnets.models._zoo import conv_unit, image_shape, scaled, use_small_input
from jaxnets.nn import Layer, PyTree, Shape

LAYOUTS = ("torchvision", "paper")
# Table 1 of the paper: #1x1, #3x3 reduce, #3x3, #5x5 reduce, #5x5, pool proj of each inception module.
INCEPTION: dict[str, tuple[int, int, int, int, int, int]] = {
    "3a": (64, 96, 128, 16, 32, 32),
    "3b": (128, 128, 192, 32, 96, 64),
    "4a": (192, 96, 208, 16, 48, 64),
    "4b": (160, 112, 224, 24, 64, 64),
    "4c": (128, 128, 256, 24, 64, 64),
    "4d": (112, 144, 288, 32, 64, 64),
    "4e": (256, 160, 320, 32, 128, 128),
    "5a": (256, 160, 320, 32, 128, 128),
    "5b": (384, 192, 384, 48, 128, 128),
}
AUX_AFTER = ("inception4a", "inception4d")  # where the two auxiliary classifiers branch off


def _check_layout(layout: str) -> bool:
    if layout not in LAYOUTS:
        raise ValueError(f"unknown GoogLeNet layout {layout!r}; choose one of {LAYOUTS}")
    return layout == "torchvision"


def _unit(features: int, kernel: int, bn: bool, name: str, stride: int = 1) -> Layer:
    return conv_unit(features, kernel, stride=stride, bn=bn, bn_eps=1e-3, name=name)


def inception(
    c1: int, c3r: int, c3: int, c5r: int, c5: int, pool_proj: int, *, layout: str = "paper", name: str = "inception"
) -> Layer:
    """The inception module: four branches on the same input, concatenated along channels (c1 + c3 + c5 + pool_proj):

    - ``branch1``: 1x1 convolution to ``c1`` maps;
    - ``branch2``: 1x1 reduction to ``c3r`` maps, then 3x3 convolution to ``c3``;
    - ``branch3``: 1x1 reduction to ``c5r`` maps, then 5x5 convolution to ``c5`` (3x3 in the torchvision layout);
    - ``branch4``: 3x3 max-pool with stride 1, then 1x1 projection to ``pool_proj`` maps.

    Every convolution is followed by a ReLU (and preceded by a batch norm in the torchvision layout); spatial size
    is kept. The 1x1 reductions are what make the 3x3 and 5x5 convolutions affordable.
    """
    bn = _check_layout(layout)
    k5 = 3 if bn else 5
    return nn.parallel(
        _unit(c1, 1, bn, "branch1"),
        nn.serial(_unit(c3r, 1, bn, "reduce"), _unit(c3, 3, bn, "conv"), name="branch2"),
        nn.serial(_unit(c5r, 1, bn, "reduce"), _unit(c5, k5, bn, "conv"), name="branch3"),
        nn.serial(nn.max_pool(3, stride=1, padding=1, name="pool"), _unit(pool_proj, 1, bn, "proj"), name="branch4"),
        name=name,
    )


def _aux_head(num_classes: int, bn: bool, width: float, name: str) -> Layer:
    """An auxiliary classifier: 4x4 average pooling, 1x1 conv to 128 maps, fc 1024 -> ReLU -> dropout 0.7, logits."""
    return nn.serial(
        nn.adaptive_avg_pool(4, name="pool"),
        _unit(scaled(128, width), 1, bn, "conv"),
        nn.flatten(),
        nn.dense(scaled(1024, width), w_init=nn.initializers.he_normal(), name="fc1"),
        nn.activation("relu"),
        nn.dropout(0.7, name="dropout"),
        nn.dense(num_classes, w_init=nn.initializers.glorot_uniform(), name="fc2"),
        name=name,
    )


def _layers(
    input_shape: Shape,
    num_classes: int,
    layout: str,
    small_input: bool | None,
    width: float,
    dropout: float | None,
    modules: tuple[str, ...] | None,
) -> tuple[tuple[int, int, int], list[Layer]]:
    bn = _check_layout(layout)
    modules = tuple(INCEPTION) if modules is None else tuple(modules)
    if not modules or any(m not in INCEPTION for m in modules) or list(modules) != sorted(set(modules)):
        raise ValueError(f"modules must be inception modules in order, some of {list(INCEPTION)}; got {modules}")
    h, w, c = image_shape("googlenet", input_shape)
    check_sizes("googlenet", num_classes=num_classes)
    if width <= 0:
        raise ValueError(f"googlenet: width (a channel multiplier) must be > 0; got {width}")
    small = use_small_input((h, w, c), small_input)
    dropout = (0.2 if bn else 0.4) if dropout is None else dropout

    def pool(name: str, window: int = 3) -> Layer:  # 'SAME' halves (rounding up) as torchvision's ceil_mode at 224
        return nn.max_pool(window, stride=2, padding="SAME", name=name)

    def block(key: str) -> Layer:
        return inception(*(scaled(v, width) for v in INCEPTION[key]), layout=layout, name=f"inception{key}")

    if small:  # CIFAR-style stem: one 3x3 convolution at full resolution, no stem pooling
        stem = [_unit(scaled(192, width), 3, bn, "conv1")]
    else:
        lrn = [] if bn else [nn.lrn(name="lrn1")]
        stem = [
            _unit(scaled(64, width), 7, bn, "conv1", stride=2),
            pool("pool1"),
            *lrn,
            _unit(scaled(64, width), 1, bn, "conv2"),
            _unit(scaled(192, width), 3, bn, "conv3"),
            *([] if bn else [nn.lrn(name="lrn2")]),
            pool("pool2"),
        ]
    layers = [*stem]
    for group, pooling in (("3", None), ("4", pool("pool3")), ("5", pool("pool4", 2 if bn else 3))):
        if pooling is not None and len(layers) > len(stem):  # a max-pool between groups 3, 4 and 5
            layers.append(pooling)
        layers += [block(k) for k in modules if k.startswith(group)]
    layers.append(nn.global_avg_pool(name="avgpool"))
    if dropout:
        layers.append(nn.dropout(dropout, name="dropout"))
    layers.append(nn.dense(num_classes, w_init=nn.initializers.glorot_uniform(), name="fc"))
    return (h, w, c), layers


def googlenet(
    input_shape: Shape = (224, 224, 3),
    num_classes: int = 1000,
    *,
    layout: str = "torchvision",
    small_input: bool | None = None,
    width: float = 1.0,
    dropout: float | None = None,
    modules: tuple[str, ...] | None = None,
) -> Model:
    """GoogLeNet (Inception v1) without its auxiliary classifiers.

    Stem conv 7x7/2 (64) -> max-pool 3x3/2 -> conv 1x1 (64) -> conv 3x3 (192) -> max-pool -> inception 3a, 3b ->
    max-pool -> 4a-4e -> max-pool -> 5a, 5b -> global average pooling -> dropout -> fc. The stride-2 max-pools pad
    'SAME' (sizes halve, rounding up), so 224x224 goes 112, 56, 28, 14, 7 as in torchvision (ceil mode).
    ``layout``: "torchvision" (batch norm, 3x3 "5x5" branch, dropout 0.2; 6,624,904 parameters at 224x224x3, 1000
    classes) or "paper" (5x5, biases, LRN, dropout 0.4; 6,998,552).
    ``small_input`` (default: images under 64 pixels a side) replaces the stem by one 3x3 convolution to 192 maps
    without pooling (32x32 then goes 32, 16, 8). ``width`` multiplies every channel count; ``dropout`` overrides the
    rate before the classifier; ``modules`` keeps only some inception modules (e.g. ("3a", "4a", "5a")), for a
    reduced GoogLeNet in quick tests.
    """
    shape, layers = _layers(input_shape, num_classes, layout, small_input, width, dropout, modules)
    return Model("googlenet", nn.serial(*layers, name="googlenet"), shape)


def googlenet_aux(
    input_shape: Shape = (224, 224, 3),
    num_classes: int = 1000,
    *,
    layout: str = "torchvision",
    small_input: bool | None = None,
    width: float = 1.0,
    dropout: float | None = None,
    modules: tuple[str, ...] | None = None,
    aux_weight: float = 0.3,
) -> Model:
    """GoogLeNet with its two auxiliary classifiers (after inception 4a and 4d), for training.

    Its outputs are the three logits stacked, ``(batch, 3, num_classes)``: the main classifier's, then the two
    auxiliary ones'. Its objective (``AuxObjective``) reports ``loss`` = main + ``aux_weight`` x each auxiliary
    softmax cross-entropy (the paper's 0.3), ``main_loss`` and the main classifier's ``accuracy``, so the training
    loop needs nothing special. The parameters are ``googlenet``'s (same options, same keys) plus ``aux1`` and
    ``aux2``: ``main_params`` drops those for inference with ``googlenet``. The other options are ``googlenet``'s;
    ``modules`` must keep 4a and 4d, where the heads branch off. With 1000 classes at 224x224x3: 13,004,888
    parameters (the two heads add 6,379,984).
    """
    shape, layers = _layers(input_shape, num_classes, layout, small_input, width, dropout, modules)
    bn = _check_layout(layout)
    cut = [i + 1 for i, layer in enumerate(layers) if layer.name in AUX_AFTER]
    if len(cut) != 2:
        raise ValueError(f"googlenet_aux needs inception modules 4a and 4d for its auxiliary heads; got {modules}")
    segments = [nn.serial(*layers[a:b]) for a, b in zip([0, *cut], [*cut, len(layers)], strict=True)]
    # Each head is wrapped in a one-layer serial so that its parameters sit under 'aux1'/'aux2' beside the others.
    heads = [nn.serial(_aux_head(num_classes, bn, width, f"aux{i}")) for i in (1, 2)]

    def init(key: jax.Array, in_shape: Shape):
        params: dict[str, PyTree] = {}
        state: dict[str, PyTree] = {}
        keys = jax.random.split(key, 5)
        h = tuple(in_shape)
        for i, seg in enumerate(segments):
            p, s, h = seg.init(keys[2 * i], h)
            params.update(p)
            state.update(s)
            if i < 2:
                p, s, _ = heads[i].init(keys[2 * i + 1], h)
                params.update(p)
                state.update(s)
        return params, state, (3, num_classes)

    def apply(params, state, x, *, key=None, train=False):
        keys = [None] * 5 if key is None else list(jax.random.split(key, 5))
        outs = []
        for i, seg in enumerate(segments):
            x, state = seg.apply(params, state, x, key=keys[2 * i], train=train)
            if i < 2:
                aux, state = heads[i].apply(params, state, x, key=keys[2 * i + 1], train=train)
                outs.append(aux)
        return jnp.stack([x, *outs], axis=1), state

    return Model("googlenet_aux", Layer(init, apply, "googlenet_aux"), shape, objective=AuxObjective(aux_weight))


@dataclass(frozen=True)
class AuxObjective:
    """``googlenet_aux``'s ``Model.objective``: per-example ``loss`` (``losses.auxiliary_classifier_loss``, in
    training and evaluation alike), ``main_loss`` (the main classifier's cross-entropy, what ``googlenet`` alone
    would score) and ``accuracy`` (of the main classifier)."""

    aux_weight: float = 0.3

    def __call__(
        self,
        model: Model,
        params: PyTree,
        state: PyTree,
        x: jax.Array,
        y: jax.Array,
        *,
        key: jax.Array | None = None,
        train: bool = False,
    ) -> tuple[dict[str, jax.Array], PyTree]:
        outputs, state = model.apply(params, state, x, key=key, train=train)
        metrics = {
            "loss": losses.auxiliary_classifier_loss(outputs, y, self.aux_weight),
            "main_loss": losses.softmax_cross_entropy(outputs[:, 0], y),
            "accuracy": (jnp.argmax(outputs[:, 0], -1) == y).astype(jnp.float32),
        }
        return metrics, state


def main_params(params: PyTree) -> PyTree:
    """``googlenet_aux``'s parameters (or state) without the auxiliary heads: ``googlenet``'s, for inference."""
    return {k: v for k, v in params.items() if k not in ("aux1", "aux2")}
