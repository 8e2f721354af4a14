"""Neural style (Gatys, Ecker & Bethge 2016) and texture synthesis: features of an image at chosen layers, and the
optimisation over pixels that matches their Gram matrices (style) and activations (content).

- ``vgg19_features`` taps a VGG-19's ReLU outputs ('relu1_1' ... 'relu5_4') using the parameters of
  ``models.vgg19`` (same names: 'conv1_1' ...); Gatys et al. replace max- by average-pooling (``pool='avg'``).
  Real style transfer needs ImageNet-trained weights, loaded into those parameters from torchvision's VGG-19 where
  it is available; jaxnets ships none.
- ``random_filter_features``: one layer of random convolutions of several sizes and a ReLU, which Ustyuzhaninov,
  Brendel, Gatys & Bethge (2016) showed synthesises textures without any training: the offline demonstration.
- ``synthesise_image``: gradient descent over pixels with any optax optimiser (also ``optax.lbfgs``), minimising
  ``style_weight * sum of style losses + content_weight * sum of content losses + tv_weight * total variation``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import jax
import jax.numpy as jnp
import optax

from jaxnets import losses, nn

Array = jax.Array
Features = Callable[[Array], dict[str, Array]]
VGG19_STAGES = (2, 2, 4, 4, 4)
STYLE_LAYERS = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")  # Gatys et al.'s choice
CONTENT_LAYERS = ("relu4_2",)
POOLS = ("avg", "max")


def vgg19_features(
    params: nn.PyTree, images: Array, layers: Sequence[str] = STYLE_LAYERS + CONTENT_LAYERS, pool: str = "avg"
) -> dict[str, Array]:
    """The ReLU outputs {name: (batch, h, w, c)} at ``layers`` of a VGG-19 with ``params`` (``models.vgg19``'s
    'conv{stage}_{i}' entries; the classifier is not used) on ``images`` (batch, H, W, 3), stopping at the last
    layer asked for. Images are given as the weights expect them (torchvision's: ImageNet-normalised RGB)."""
    if pool not in POOLS:
        raise ValueError(f"unknown pooling {pool!r}; choose one of {POOLS}")
    known = [f"relu{s}_{i}" for s, n in enumerate(VGG19_STAGES, start=1) for i in range(1, n + 1)]
    unknown = [name for name in layers if name not in known]
    if unknown or not layers:
        raise ValueError(f"unknown VGG-19 layers {unknown}; choose among {known}")
    wanted, out, h = set(layers), {}, images
    downsample = (nn.avg_pool if pool == "avg" else nn.max_pool)(2, padding="SAME")
    for stage, n in enumerate(VGG19_STAGES, start=1):
        for i in range(1, n + 1):
            p = params[f"conv{stage}_{i}"]
            h, _ = nn.conv2d(p["w"].shape[-1], 3, padding=1).apply(p, {}, h)
            h = jax.nn.relu(h)
            if f"relu{stage}_{i}" in wanted:
                out[f"relu{stage}_{i}"] = h
                if len(out) == len(wanted):
                    return out
        h, _ = downsample.apply({}, {}, h)
    return out


def random_filters(
    key: Array, channels: int = 3, sizes: Sequence[int] = (3, 5, 7, 11), features: int = 128
) -> dict[str, dict[str, Array]]:
    """Random convolution filters, ``features`` of each size in ``sizes`` (He-normal), biases zero."""
    keys = jax.random.split(key, len(sizes))
    init = nn.initializers.he_normal()
    return {
        f"size{k}": {"w": init(kk, (k, k, channels, features)), "b": jnp.zeros(features)}
        for k, kk in zip(sizes, keys, strict=True)
    }


def random_filter_features(params: Mapping[str, dict[str, Array]], images: Array) -> dict[str, Array]:
    """ReLU of each bank of ``random_filters`` ('SAME' padding): {'size3': ..., 'size5': ...}."""
    return {
        name: jax.nn.relu(nn.conv2d(p["w"].shape[-1], p["w"].shape[0], padding="SAME").apply(p, {}, images)[0])
        for name, p in params.items()
    }


def style_targets(features: Features, style: Array, layers: Sequence[str]) -> dict[str, Array]:
    """Gram matrices of the style image(s) at ``layers``."""
    f = features(style)
    return {name: losses.gram_matrix(f[name]) for name in layers}


def synthesise_image(
    features: Features,
    init: Array,
    *,
    style: Array | None = None,
    content: Array | None = None,
    style_layers: Sequence[str] = (),
    content_layers: Sequence[str] = (),
    style_weight: float = 1.0,
    content_weight: float = 1.0,
    tv_weight: float = 0.0,
    steps: int = 500,
    optimizer: optax.GradientTransformation | None = None,
) -> tuple[Array, Array]:
    """Optimise the pixels of ``init`` (batch, H, W, C) so that ``features`` of it match the Gram matrices of
    ``style`` at ``style_layers`` and the activations of ``content`` at ``content_layers``, plus a total-variation
    penalty; texture synthesis without ``content``. Returns the image and the loss before each step (steps,).
    ``optimizer`` defaults to Adam(0.05); ``optax.lbfgs()`` gets the value function it needs."""
    if (style is None) != (not style_layers) or (content is None) != (not content_layers):
        raise ValueError("give style with style_layers and content with content_layers (or neither of a pair)")
    if style is None and content is None:
        raise ValueError("nothing to match: give a style and/or a content image")
    grams = style_targets(features, style, style_layers) if style is not None else {}
    targets = features(content) if content is not None else {}
    targets = {name: jax.lax.stop_gradient(targets[name]) for name in content_layers}

    def loss(x: Array) -> Array:
        f = features(x)
        total = tv_weight * jnp.sum(losses.total_variation(x))
        total += style_weight * sum(jnp.sum(losses.style_loss(f[n], grams[n])) for n in style_layers)
        total += content_weight * sum(jnp.sum(losses.content_loss(f[n], targets[n])) for n in content_layers)
        return total

    opt = optimizer or optax.adam(0.05)
    value_and_grad = jax.value_and_grad(loss)

    def step(carry, _):
        x, state = carry
        value, grad = value_and_grad(x)
        updates, state = opt.update(grad, state, x, value=value, grad=grad, value_fn=loss)
        return (optax.apply_updates(x, updates), state), value

    (image, _), history = jax.jit(lambda x: jax.lax.scan(step, (x, opt.init(x)), None, length=steps))(init)
    return image, history
