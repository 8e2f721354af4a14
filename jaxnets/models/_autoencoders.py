"""Autoencoders: the deep autoencoder, the denoising autoencoder (MLP and convolutional) and the variational one.

Each is a ``Model`` whose ``apply`` maps a batch of images to the *logits* of their reconstruction (same shape as
the input; ``sigmoid`` of them is the reconstruction) and whose ``objective`` ignores the labels. Pixels must be in
[0, 1] (``normalisation='unit'``): the reconstruction loss is the Bernoulli cross-entropy summed over the pixels of
an image (nats per image), and ``squared_error`` is the summed squared error of ``sigmoid(logits)`` per image, the
figure Hinton & Salakhutdinov (2006) report (3.00 on the MNIST test set for their 784-1000-500-250-30 autoencoder).

- ``autoencoder``: MLP encoder to a linear code, mirrored decoder (Hinton & Salakhutdinov 2006's shape, trained end to
  end with ReLU and Adam instead of RBM pretraining).
- ``dae``/``conv_dae``: denoising (Vincent, Larochelle, Bengio & Manzagol 2008): the input is corrupted — masking
  noise zeroes a random fraction of pixels, or Gaussian noise is added — with the step's key in training only; the
  target is always the clean image, and evaluation runs on clean input.
- ``conv_autoencoder``: strided 3x3 convolutions down to a dense code, nearest-neighbour upsampling + convolutions
  back.
- ``vae`` (Kingma & Welling 2013): the encoder gives the mean and log-variance of q(z|x); z = mu + sigma * eps with
  eps ~ N(0, I) drawn from the key (the reparameterisation trick, so the sample is differentiable in the
  parameters); loss = -ELBO = E_q[-log p(x|z)] (one sample) + KL(q(z|x) || N(0, I)), with both pieces reported.

Their losses live in ``jaxnets.losses`` (``bernoulli_nll``, ``squared_error``, ``gaussian_kl``), their layers in
``jaxnets.nn`` (``reshape``, ``upsample``) and the pictures of reconstructions and samples in ``jaxnets.viz``.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass

import jax
import jax.numpy as jnp

from jaxnets import nn
from jaxnets.losses import bernoulli_nll, gaussian_kl, squared_error
from jaxnets.models._base import Model, check_sizes
from jaxnets.nn import Layer, PyTree, Shape

Array = jax.Array
CORRUPTIONS = ("mask", "gaussian")
# The fixed key of a VAE evaluated without one: a one-sample, reproducible estimate of the ELBO.
EVAL_KEY = 0


# --- layers -----------------------------------------------------------------------------------------------------------


def _mlp_layers(widths: Sequence[int], activation: str, prefix: str) -> list[Layer]:
    w_init = nn.initializers.for_activation(activation)
    layers = []
    for i, width in enumerate(widths, start=1):
        layers += [nn.dense(width, w_init=w_init, name=f"{prefix}{i}"), nn.activation(activation)]
    return layers


# --- corruption -------------------------------------------------------------------------------------------------------


def corrupt(x: Array, key: Array, kind: str = "mask", level: float = 0.25) -> Array:
    """Vincent et al. 2008's corruption: 'mask' zeroes each input independently with probability ``level``;
    'gaussian' adds N(0, level^2) noise."""
    if kind == "mask":
        return jnp.where(jax.random.bernoulli(key, level, x.shape), jnp.zeros((), x.dtype), x)
    if kind == "gaussian":
        return x + level * jax.random.normal(key, x.shape, x.dtype)
    raise ValueError(f"unknown corruption {kind!r}; choose one of {CORRUPTIONS}")


# --- deterministic autoencoders ---------------------------------------------------------------------------------------


def _check_input(model: Model, x: Array) -> None:
    if x.ndim != len(model.input_shape) + 1 or tuple(x.shape[1:]) != tuple(model.input_shape):
        raise ValueError(
            f"{model.name} expects input of shape (batch, {', '.join(map(str, model.input_shape))}); "
            f"got {tuple(x.shape)}"
        )


@dataclass(frozen=True)
class Reconstruction:
    """The objective of a (denoising) autoencoder: Bernoulli NLL of the clean input given the input, corrupted by
    ``corruption`` at ``level`` in training when ``corruption`` is set; labels are ignored."""

    corruption: str | None = None
    level: float = 0.25

    def __post_init__(self) -> None:
        if self.corruption is not None and self.corruption not in CORRUPTIONS:
            raise ValueError(f"unknown corruption {self.corruption!r}; choose one of {CORRUPTIONS} or None")
        if self.corruption == "mask" and not 0.0 <= self.level < 1.0:
            raise ValueError(
                f"masking noise zeroes a fraction of the inputs, which must be in [0, 1); got {self.level}"
            )

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
        del y
        inputs, net_key = x, key
        if train and self.corruption is not None:
            if key is None:
                raise ValueError(f"{model.name} corrupts its input in training: call with key=... and train=True")
            noise_key, net_key = jax.random.split(key)
            inputs = corrupt(x, noise_key, self.corruption, self.level)
        logits, state = model.apply(params, state, inputs, key=net_key, train=train)
        return {"loss": bernoulli_nll(logits, x), "squared_error": squared_error(logits, x)}, state


def autoencoder(
    input_shape: Shape = (28, 28, 1),
    num_classes: int | None = None,
    hidden: Sequence[int] = (1000, 500, 250),
    code: int = 30,
    activation: str = "relu",
    corruption: str | None = None,
    level: float = 0.25,
    name: str = "autoencoder",
) -> Model:
    """MLP autoencoder ``input - hidden... - code (linear) - reversed(hidden)... - input`` with sigmoid outputs.

    Parameters: ``encoder`` (``hidden1``.., ``code``) and ``decoder`` (``hidden1``.., ``out``). ``num_classes`` is
    ignored (labels are not used). ``corruption`` ('mask' or 'gaussian', at ``level``) makes it a denoising one.
    """
    del num_classes
    check_sizes(name, hidden=hidden, code=code)
    nn.get_activation(activation)
    objective = Reconstruction(corruption, level)
    input_shape = tuple(input_shape)
    encoder = nn.serial(
        nn.flatten(),
        *_mlp_layers(hidden, activation, "hidden"),
        nn.dense(code, w_init=nn.initializers.glorot_uniform(), name="code"),
        name="encoder",
    )
    decoder = nn.serial(
        *_mlp_layers(tuple(hidden)[::-1], activation, "hidden"),
        nn.dense(math.prod(input_shape), w_init=nn.initializers.glorot_uniform(), name="out"),
        nn.reshape(input_shape),
        name="decoder",
    )
    return Model(name, nn.serial(encoder, decoder, name=name), input_shape, objective=objective)


def dae(
    input_shape: Shape = (28, 28, 1),
    num_classes: int | None = None,
    corruption: str = "mask",
    level: float = 0.25,
    **kwargs,
) -> Model:
    """Denoising MLP autoencoder (Vincent et al. 2008): ``autoencoder`` trained on corrupted inputs (masking noise
    zeroing 25% of the pixels by default) to reconstruct the clean ones."""
    return autoencoder(input_shape, num_classes, corruption=corruption, level=level, name="dae", **kwargs)


def dae_layer(visible: int, hidden: int, *, corruption: str = "mask", level: float = 0.25) -> Model:
    """One layer of a stacked denoising autoencoder (Vincent et al. 2010): encoder ``sigmoid(v W + b)`` to
    ``hidden`` units, decoder an affine map back to ``visible`` logits (untied weights), trained to reconstruct the
    clean input in [0, 1] from its ``corruption`` at ``level`` (``models.Reconstruction``: Bernoulli cross-entropy).
    Parameters ``{'encoder': {'w', 'b'}, 'decoder': {'w', 'b'}}``."""
    return Model(
        "dae_layer",
        nn.serial(
            nn.dense(hidden, w_init=nn.initializers.for_activation("sigmoid"), name="encoder"),
            nn.activation("sigmoid"),
            nn.dense(visible, w_init=nn.initializers.for_activation("sigmoid"), name="decoder"),
            name="dae_layer",
        ),
        (visible,),
        objective=Reconstruction(corruption, level),
    )


def conv_autoencoder(
    input_shape: Shape = (28, 28, 1),
    num_classes: int | None = None,
    features: Sequence[int] = (16, 32),
    code: int = 32,
    corruption: str | None = None,
    level: float = 0.25,
    name: str = "conv_autoencoder",
) -> Model:
    """Convolutional autoencoder: per entry of ``features`` a 3x3 stride-2 convolution + ReLU (28 -> 14 -> 7), a
    dense linear ``code``; the decoder mirrors it with a dense layer back to the feature map and, per level, a 2x
    nearest-neighbour upsampling + 3x3 convolution (ReLU, the last one linear giving the output logits).

    Height and width must be multiples of ``2 ** len(features)``. The convolutions are XLA's unless built inside
    a ``nn.conv_strategy`` block: on this project's CPU a training step was ~3x faster than with 'auto' (46 against
    149 ms at batch 128).
    """
    del num_classes
    check_sizes(name, input_shape=input_shape, features=features, code=code)
    objective = Reconstruction(corruption, level)
    input_shape = tuple(input_shape)
    if len(input_shape) != 3:
        raise ValueError(f"{name} takes images of shape (height, width, channels); got input_shape {input_shape}")
    h, w, c = input_shape
    down = 2 ** len(features)
    if h % down or w % down:
        raise ValueError(
            f"{name}: height and width must be multiples of {down} for {len(features)} stride-2 "
            f"levels; got {input_shape}"
        )
    with nn.conv_strategy(nn.current_conv_strategy(default="xla")):
        encoder, decoder = _conv_coder(features, code, (h // down, w // down, features[-1]), c)
    return Model(name, nn.serial(encoder, decoder, name=name), input_shape, objective=objective)


def _conv_coder(features: Sequence[int], code: int, bottom: tuple[int, int, int], channels: int) -> tuple[Layer, Layer]:
    """``conv_autoencoder``'s encoder (strided convolutions to the code) and decoder (back to ``channels`` maps)."""
    he = nn.initializers.he_normal()
    enc: list[Layer] = []
    for i, f in enumerate(features, start=1):
        enc += [nn.conv2d(f, 3, stride=2, padding="SAME", w_init=he, name=f"conv{i}"), nn.activation("relu")]
    encoder = nn.serial(
        *enc, nn.flatten(), nn.dense(code, w_init=nn.initializers.glorot_uniform(), name="code"), name="encoder"
    )
    dec: list[Layer] = [nn.dense(math.prod(bottom), w_init=he, name="dense"), nn.activation("relu"), nn.reshape(bottom)]
    outs = [*tuple(features)[-2::-1], channels]
    for i, f in enumerate(outs, start=1):
        last = i == len(outs)
        dec += [
            nn.upsample(2),
            nn.conv2d(f, 3, padding="SAME", w_init=nn.initializers.glorot_uniform() if last else he, name=f"conv{i}"),
        ]
        if not last:
            dec.append(nn.activation("relu"))
    return encoder, nn.serial(*dec, name="decoder")


def conv_dae(
    input_shape: Shape = (28, 28, 1),
    num_classes: int | None = None,
    corruption: str = "mask",
    level: float = 0.25,
    **kwargs,
) -> Model:
    """Denoising convolutional autoencoder: ``conv_autoencoder`` trained on corrupted inputs."""
    return conv_autoencoder(input_shape, num_classes, corruption=corruption, level=level, name="conv_dae", **kwargs)


# --- variational autoencoder ------------------------------------------------------------------------------------------


def reparameterise(mean: Array, log_var: Array, key: Array) -> Array:
    """z = mean + exp(log_var / 2) * eps, eps ~ N(0, I): a sample of N(mean, diag exp(log_var)) that is a
    differentiable function of (mean, log_var) for a fixed key (Kingma & Welling 2013, section 2.4)."""
    eps = jax.random.normal(key, mean.shape, mean.dtype)
    return mean + jnp.exp(0.5 * log_var) * eps


def _sub(state: PyTree, name: str) -> PyTree:
    return state.get(name, {})


@dataclass(frozen=True)
class ELBO:
    """A VAE's parts and its objective: -ELBO per example, the reconstruction term from one reparameterised sample.

    ``encoder`` maps x to the concatenated (mean, log_var) of q(z|x), ``decoder`` maps z to pixel logits.
    """

    encoder: Layer
    decoder: Layer
    latent: int

    def init(self, key: Array, in_shape: Shape) -> tuple[PyTree, PyTree, Shape]:
        ke, kd = jax.random.split(key)
        pe, se, stats = self.encoder.init(ke, in_shape)
        if tuple(stats) != (2 * self.latent,):
            raise ValueError(f"the VAE encoder must give 2 x {self.latent} statistics; got shape {stats}")
        pd, sd, out = self.decoder.init(kd, (self.latent,))
        return {"encoder": pe, "decoder": pd}, {k: v for k, v in (("encoder", se), ("decoder", sd)) if v}, out

    def encode(self, params: PyTree, state: PyTree, x: Array) -> tuple[Array, Array, PyTree]:
        """Mean and log-variance of q(z|x), and the encoder's new state."""
        stats, se = self.encoder.apply(params["encoder"], _sub(state, "encoder"), x)
        return stats[..., : self.latent], stats[..., self.latent :], se

    def decode(self, params: PyTree, state: PyTree, z: Array) -> tuple[Array, PyTree]:
        """Pixel logits of p(x|z), and the decoder's new state."""
        return self.decoder.apply(params["decoder"], _sub(state, "decoder"), z)

    def forward(
        self, params: PyTree, state: PyTree, x: Array, key: Array | None = None
    ) -> tuple[Array, Array, Array, PyTree]:
        """(logits, mean, log_var, new state): z sampled with ``key``, or z = mean without one."""
        mean, log_var, se = self.encode(params, state, x)
        z = mean if key is None else reparameterise(mean, log_var, key)
        logits, sd = self.decode(params, state, z)
        return logits, mean, log_var, {k: v for k, v in (("encoder", se), ("decoder", sd)) if v}

    def apply(self, params: PyTree, state: PyTree, x: Array, *, key: Array | None = None, train: bool = False):
        """The layer's apply: reconstruction logits, from a sample of z in training with a key, from z = mean
        otherwise."""
        logits, _, _, state = self.forward(params, state, x, key if train else None)
        return logits, state

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
        del y, train
        _check_input(model, x)
        key = jax.random.PRNGKey(EVAL_KEY) if key is None else key
        logits, mean, log_var, state = self.forward(params, state, x, key)
        reconstruction, kl = bernoulli_nll(logits, x), gaussian_kl(mean, log_var)
        return {"loss": reconstruction + kl, "reconstruction": reconstruction, "kl": kl}, state


def vae(
    input_shape: Shape = (28, 28, 1),
    num_classes: int | None = None,
    hidden: Sequence[int] = (500,),
    latent: int = 20,
    activation: str = "relu",
) -> Model:
    """Variational autoencoder (Kingma & Welling 2013): MLP encoder to the mean and log-variance of a diagonal
    Gaussian q(z|x) over ``latent`` dimensions, a mirrored MLP decoder to Bernoulli pixel logits, prior N(0, I).

    Metrics per example: ``loss`` = -ELBO = ``reconstruction`` (-log p(x|z), one reparameterised sample of z) +
    ``kl`` (closed form), in nats. Training draws z from the step's key; evaluation without a key uses a fixed one
    (a reproducible one-sample estimate). ``apply`` gives the reconstruction logits, from z = mean outside
    training. Parameters: ``encoder`` (``hidden1``.., ``heads``: ``mean``, ``log_var``), ``decoder``.
    """
    del num_classes
    check_sizes("vae", hidden=hidden, latent=latent)
    nn.get_activation(activation)
    input_shape = tuple(input_shape)
    glorot = nn.initializers.glorot_uniform()
    encoder = nn.serial(
        nn.flatten(),
        *_mlp_layers(hidden, activation, "hidden"),
        nn.parallel(
            nn.dense(latent, w_init=glorot, name="mean"), nn.dense(latent, w_init=glorot, name="log_var"), name="heads"
        ),
        name="encoder",
    )
    decoder = nn.serial(
        *_mlp_layers(tuple(hidden)[::-1], activation, "hidden"),
        nn.dense(math.prod(input_shape), w_init=glorot, name="out"),
        nn.reshape(input_shape),
        name="decoder",
    )
    elbo = ELBO(encoder, decoder, latent)
    return Model("vae", Layer(elbo.init, elbo.apply, "vae"), input_shape, objective=elbo)


def _elbo(model: Model) -> ELBO:
    if not isinstance(model.objective, ELBO):
        raise ValueError(f"{model.name} is not a VAE built by jaxnets.models.vae")
    return model.objective


def vae_encode(model: Model, params: PyTree, state: PyTree, x: Array) -> tuple[Array, Array]:
    """The mean and log-variance of q(z|x) for a batch."""
    _check_input(model, x)
    mean, log_var, _ = _elbo(model).encode(params, state, x)
    return mean, log_var


def vae_sample(model: Model, params: PyTree, state: PyTree, key: Array, n: int) -> Array:
    """``n`` images from the generative model: z ~ N(0, I), pixels = sigmoid(decoder(z)) (their means)."""
    elbo = _elbo(model)
    logits, _ = elbo.decode(params, state, jax.random.normal(key, (n, elbo.latent)))
    return jax.nn.sigmoid(logits)


# --- reconstructions --------------------------------------------------------------------------------------------------


def reconstruct(model: Model, params: PyTree, state: PyTree, x: Array) -> Array:
    """The model's reconstruction ``sigmoid(apply(x))`` of a batch in evaluation mode (clean input, z = mean)."""
    logits, _ = jax.jit(functools.partial(model.apply, train=False))(params, state, jnp.asarray(x))
    return jax.nn.sigmoid(logits)


def reconstructs(model: Model) -> bool:
    """Whether ``model.apply`` gives the logits of a reconstruction of its input: the autoencoders here and the RBM."""
    from jaxnets.models._boltzmann import ContrastiveDivergence

    return isinstance(model.objective, Reconstruction | ELBO | ContrastiveDivergence)
