"""Generative adversarial networks: Goodfellow et al.'s (2014) MLP GAN and Radford et al.'s (2016) DCGAN, and the
measures of their samples (a Fréchet distance in a classifier's feature space and the class histogram).

A GAN is a ``Model`` of two players over images: ``init`` gives ``params = {'generator': ..., 'discriminator':
...}`` (and the same for the batch-norm state); ``apply(params, state, x)`` is the discriminator, the logit
``(batch, 1)`` of "``x`` is real" (head 'sigmoid'); the generator maps latent codes ``z`` ``(batch, latent)`` to
images in [-1, 1] (tanh): ``gan_sample``, or ``adversarial_parts(model).generate``; ``adversarial_parts`` gives the
players to a training step (``jaxnets.train.gan_step``: each player its own optimiser). ``metrics`` on real images
``x`` score both players on the batch against as many generated images: 'loss' (the discriminator's),
'generator_loss', 'd_real' and 'd_fake' (the discriminator's mean probability of "real" on each).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np

from jaxnets import nn
from jaxnets.losses import discriminator_loss, gaussian_frechet_distance, generator_loss
from jaxnets.models._base import Model, check_sizes
from jaxnets.nn import Layer, PyTree, Shape

Array = jax.Array
PLAYERS = ("generator", "discriminator")


@dataclass(frozen=True)
class Adversarial:
    """The two players of a GAN and the latent size: the ``Model``'s layer (init/apply) and its objective."""

    generator: Layer
    discriminator: Layer
    latent: int
    saturating: bool = False

    def init(self, key: Array, in_shape: Shape) -> tuple[PyTree, PyTree, Shape]:
        kg, kd = jax.random.split(key)
        pg, sg, out = self.generator.init(kg, (self.latent,))
        if tuple(out) != tuple(in_shape):
            raise ValueError(f"the generator makes images of shape {tuple(out)}, not the {tuple(in_shape)} asked for")
        pd, sd, logit_shape = self.discriminator.init(kd, tuple(in_shape))
        if math.prod(logit_shape) != 1:
            raise ValueError(f"the discriminator must output one logit per image; it outputs shape {logit_shape}")
        return {"generator": pg, "discriminator": pd}, {"generator": sg, "discriminator": sd}, (1,)

    def generate(
        self, params: PyTree, state: PyTree, z: Array, *, key: Array | None = None, train: bool = False
    ) -> tuple[Array, PyTree]:
        """Images from latent codes ``z``; returns them and the generator's new state."""
        return self.generator.apply(params["generator"], state["generator"], z, key=key, train=train)

    def discriminate(
        self, params: PyTree, state: PyTree, x: Array, *, key: Array | None = None, train: bool = False
    ) -> tuple[Array, PyTree]:
        """The discriminator's logits ``(batch,)`` of "``x`` is real"; returns them and its new state."""
        logits, new = self.discriminator.apply(params["discriminator"], state["discriminator"], x, key=key, train=train)
        return logits.reshape(x.shape[0]), new

    def apply(self, params: PyTree, state: PyTree, x: Array, *, key: Array | None = None, train: bool = False):
        logits, sd = self.discriminate(params, state, x, key=key, train=train)
        return logits[:, None], {**state, "discriminator": sd}

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
        del model, y
        key = jax.random.PRNGKey(0) if key is None else key
        kz, kd = jax.random.split(key)
        fake, _ = self.generate(params, state, jax.random.normal(kz, (x.shape[0], self.latent)), train=train)
        real_logits, sd = self.discriminate(params, state, x, key=kd, train=train)
        fake_logits, sd = self.discriminate(params, {**state, "discriminator": sd}, fake, key=kd, train=train)
        metrics = {
            "loss": discriminator_loss(real_logits, fake_logits),
            "generator_loss": generator_loss(fake_logits, self.saturating),
            "d_real": jax.nn.sigmoid(real_logits),
            "d_fake": jax.nn.sigmoid(fake_logits),
        }
        return metrics, {**state, "discriminator": sd}


def adversarial_parts(model: Model) -> Adversarial:
    """The players of a GAN built by ``gan`` or ``dcgan``; ``ValueError`` for any other model."""
    if not isinstance(model.objective, Adversarial):
        raise ValueError(f"{model.name} is not a GAN built by jaxnets.models.gan or dcgan")
    return model.objective


def _leaky(slope: float = 0.2) -> Layer:
    return nn.stateless("leaky_relu", lambda x: jax.nn.leaky_relu(x, slope))


def _reshape(shape: Shape) -> Layer:
    return nn.stateless("reshape", lambda x: x.reshape(x.shape[0], *shape), lambda s: tuple(shape))


def _make(
    name: str, generator: Layer, discriminator: Layer, latent: int, image_shape: Shape, saturating: bool
) -> Model:
    players = Adversarial(generator, discriminator, latent, saturating)
    return Model(name, Layer(players.init, players.apply, name), tuple(image_shape), head="sigmoid", objective=players)


def gan(
    input_shape: Shape = (28, 28, 1),
    num_classes: int | None = None,
    latent: int = 100,
    hidden: Sequence[int] = (256, 512),
    dropout: float = 0.3,
    saturating: bool = False,
) -> Model:
    """Goodfellow et al. (2014)'s GAN with MLP players: generator ``latent -> hidden.. -> prod(input_shape)`` (ReLU,
    tanh output), discriminator ``prod(input_shape) -> hidden[::-1].. -> 1`` (leaky ReLU 0.2 and dropout, in place of
    the paper's maxout), trained with the non-saturating generator loss unless ``saturating``. Images in [-1, 1]."""
    del num_classes
    check_sizes("gan", latent=latent, **{f"hidden[{i}]": h for i, h in enumerate(hidden)})
    image_shape = tuple(input_shape)
    he = nn.initializers.he_normal()
    g_layers = [
        layer
        for i, h in enumerate(hidden)
        for layer in (nn.dense(h, w_init=he, name=f"hidden{i + 1}"), nn.activation("relu"))
    ]
    generator = nn.serial(
        *g_layers,
        nn.dense(math.prod(image_shape), name="out"),
        nn.activation("tanh"),
        _reshape(image_shape),
        name="generator",
    )
    d_layers = [
        layer
        for i, h in enumerate(tuple(hidden)[::-1])
        for layer in (nn.dense(h, w_init=he, name=f"hidden{i + 1}"), _leaky(), nn.dropout(dropout))
    ]
    discriminator = nn.serial(nn.flatten(), *d_layers, nn.dense(1, name="out"), name="discriminator")
    return _make("gan", generator, discriminator, latent, image_shape, saturating)


def dcgan(
    input_shape: Shape = (28, 28, 1),
    num_classes: int | None = None,
    latent: int = 100,
    features: int = 64,
    saturating: bool = False,
) -> Model:
    """Radford et al. (2016)'s DCGAN scaled to MNIST: generator ``dense(latent -> H/4 x W/4 x 2f)``, batch norm,
    ReLU, transposed convolutions 4x4 stride 2 to ``f`` maps (batch norm, ReLU) and to the image's channels (tanh);
    discriminator: 4x4 stride-2 convolutions to ``f`` then ``2f`` maps (batch norm on the second), leaky ReLU 0.2,
    a dense logit. No pooling, no hidden dense layers beyond the first projection, as the paper prescribes."""
    del num_classes
    check_sizes("dcgan", latent=latent, features=features)
    h, w, c = tuple(input_shape)
    if h % 4 or w % 4:
        raise ValueError(f"dcgan needs an image height and width divisible by 4; got input_shape {tuple(input_shape)}")
    init = nn.initializers.normal(0.02)
    base = (h // 4, w // 4, 2 * features)
    generator = nn.serial(
        nn.dense(math.prod(base), w_init=init, name="project"),
        _reshape(base),
        nn.batch_norm(name="bn0"),
        nn.activation("relu"),
        nn.conv_transpose(features, 4, stride=2, padding=1, w_init=init, name="deconv1"),
        nn.batch_norm(name="bn1"),
        nn.activation("relu"),
        nn.conv_transpose(c, 4, stride=2, padding=1, w_init=init, name="deconv2"),
        nn.activation("tanh"),
        name="generator",
    )
    discriminator = nn.serial(
        nn.conv2d(features, 4, stride=2, padding=1, w_init=init, name="conv1"),
        _leaky(),
        nn.conv2d(2 * features, 4, stride=2, padding=1, w_init=init, name="conv2"),
        nn.batch_norm(name="bn2"),
        _leaky(),
        nn.flatten(),
        nn.dense(1, w_init=init, name="out"),
        name="discriminator",
    )
    return _make("dcgan", generator, discriminator, latent, (h, w, c), saturating)


def gan_sample(model: Model, params: PyTree, state: PyTree, key: Array, n: int) -> Array:
    """``n`` images from the generator (evaluation mode) with z ~ N(0, I) drawn from ``key``; values in [-1, 1]."""
    parts = adversarial_parts(model)
    return parts.generate(params, state, jax.random.normal(key, (n, parts.latent)))[0]


# --- measuring samples: a classifier's features and predicted classes --------------------------------------------


def _feature_block(width: int) -> Layer:
    he = nn.initializers.he_normal()
    return nn.serial(
        nn.conv2d(32, 3, padding="SAME", w_init=he, name="conv1"),
        nn.activation("relu"),
        nn.max_pool(2),
        nn.conv2d(64, 3, padding="SAME", w_init=he, name="conv2"),
        nn.activation("relu"),
        nn.max_pool(2),
        nn.flatten(),
        nn.dense(width, w_init=he, name="dense"),
        nn.activation("relu"),
        name="features",
    )


def feature_classifier(input_shape: Shape = (28, 28, 1), num_classes: int = 10, width: int = 128) -> Model:
    """The classifier whose feature space scores generated digits: conv 3x3 (32) -> ReLU -> max-pool 2 -> conv 3x3
    (64) -> ReLU -> max-pool 2 -> flatten -> dense ``width`` -> ReLU (the *features*: ``params['features']``) ->
    dense ``num_classes`` (``params['logits']``)."""
    check_sizes("feature_classifier", num_classes=num_classes, width=width)
    layer = nn.serial(_feature_block(width), nn.dense(num_classes, name="logits"), name="feature_classifier")
    return Model("feature_classifier", layer, tuple(input_shape))


def classifier_features(
    model: Model, params: PyTree, state: PyTree, x: np.ndarray, batch_size: int = 500
) -> tuple[np.ndarray, np.ndarray]:
    """A ``feature_classifier``'s penultimate activations (after the ReLU of its hidden dense layer: the
    *features*) and its predicted classes for every example of ``x``, in batches, in evaluation mode."""
    if model.name != "feature_classifier" or "features" not in params:
        raise ValueError(f"{model.name} is not a feature classifier: build it with models.feature_classifier")
    fn = _features_fn(model, int(params["features"]["dense"]["w"].shape[1]))
    feats, classes = [], []
    for i in range(0, len(x), batch_size):
        f, c = fn(params, state, jnp.asarray(x[i : i + batch_size]))
        feats.append(np.asarray(f, np.float64))
        classes.append(np.asarray(c))
    return np.concatenate(feats), np.concatenate(classes)


@functools.lru_cache(maxsize=8)
def _features_fn(model: Model, width: int):
    block = _feature_block(width)

    def run(params, state, x):
        logits, _ = model.apply(params, state, x)
        feats, _ = block.apply(params["features"], state.get("features", {}), x)
        return feats, jnp.argmax(logits, axis=-1)

    return jax.jit(run)


def frechet_distance(features_a: np.ndarray, features_b: np.ndarray) -> float:
    """The Fréchet distance between Gaussians fitted (mean, unbiased covariance) to two sets of feature vectors
    ``(n, d)``: FID's formula (Heusel et al. 2017) in any feature space, computed in float64."""
    a, b = np.asarray(features_a, np.float64), np.asarray(features_b, np.float64)
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[1] or min(len(a), len(b)) < 2:
        raise ValueError(
            f"need two sets of feature vectors (n, d) with the same d and n >= 2; got shapes {a.shape} and {b.shape}"
        )
    with jax.enable_x64(True):
        value = gaussian_frechet_distance(
            jnp.asarray(a.mean(0)),
            jnp.asarray(np.cov(a, rowvar=False)),
            jnp.asarray(b.mean(0)),
            jnp.asarray(np.cov(b, rowvar=False)),
        )
        return float(value)


def class_histogram(classes: np.ndarray, num_classes: int = 10) -> dict[str, object]:
    """Mode coverage of generated digits from their predicted ``classes``: the count of each class, how many
    classes occur, and the ratio of the most to the least frequent class (``inf`` when one is missing)."""
    counts = np.bincount(np.asarray(classes, np.int64), minlength=num_classes)[:num_classes]
    least = int(counts.min())
    return {
        "counts": counts.tolist(),
        "classes_present": int(np.sum(counts > 0)),
        "max_min_ratio": float(counts.max() / least) if least else float("inf"),
    }
