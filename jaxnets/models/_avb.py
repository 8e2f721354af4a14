"""Adversarial variational Bayes (Mescheder, Nowozin & Geiger 2017).

The encoder is *implicit*: z = E(x, eps) with eps ~ N(0, I) fed in beside x, so q(z|x) may be any shape but has no
density to put in the ELBO. A critic T(x, z), trained to tell (x, z ~ q(z|x)) from (x, z ~ p(z)) by logistic
regression, has the optimum T*(x, z) = log q(z|x) - log p(z) (the paper's proposition 1), so

    ELBO(x) = E_q[log p(x|z) - (log q(z|x) - log p(z))] ~= E_eps[log p(x | E(x, eps)) - T(x, E(x, eps))].

Adaptive contrast (the paper's section 3.3, ``avb(..., adaptive_contrast=True)``): a critic asked for a large
log q - log p (a q much narrower than the prior) separates the two perfectly long before it reaches it, so the KL is
underestimated and q collapses. Instead, with mu(x) and sigma(x) the mean and standard deviation of q(z|x)
(estimated from ``contrast_samples`` encoder draws per example, held constant: no gradient) and
r(z|x) = N(mu(x), sigma(x)^2), the critic tells the normalised z~ = (z - mu) / sigma from N(0, I), so its optimum is
log q~(z~|x) - log N(z~) = log q(z|x) - log r(z|x), and the known part is added in closed form:

    KL(q || p) = E_q[T*(x, z~) + log r(z|x) - log p(z)].

The diagonal r cannot see correlations between latent dimensions: on MNIST (bench/vae_nll.py) an MLP encoder on
[x, eps] learns to put q on a nearly one-dimensional curve, which the critic again separates without measuring it.

The ``Model``'s parameters are ``encoder``, ``decoder`` and ``critic``; ``apply(params, state, x)`` gives the
reconstruction logits; ``metrics`` gives 'loss' = KL estimate + reconstruction (the negative ELBO estimate),
'reconstruction' (-log p(x|z), Bernoulli), 'kl' (the KL estimate at the encoder's sample: T, plus
log r - log p with adaptive contrast) and 'critic_loss'. Training: ``jaxnets.train.avb_step`` (the autoencoder and
the critic, each with its own optimiser).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass

import jax
import jax.numpy as jnp

from jaxnets import nn
from jaxnets.losses import bernoulli_nll, gaussian_log_density
from jaxnets.models._base import Model, check_sizes
from jaxnets.nn import Layer, PyTree, Shape

Array = jax.Array
EVAL_KEY = 0


@dataclass(frozen=True)
class AdversarialVB:
    """AVB's three networks over flattened inputs: encoder on [x, eps] -> z, decoder z -> pixel logits, critic on
    [x, z] -> one logit; ``contrast_samples`` > 0 turns on adaptive contrast with that many draws per example."""

    encoder: Layer
    decoder: Layer
    critic: Layer
    latent: int
    noise: int
    input_shape: Shape
    contrast_samples: int = 0

    def init(self, key: Array, in_shape: Shape) -> tuple[PyTree, PyTree, Shape]:
        ke, kd, kc = jax.random.split(key, 3)
        d = math.prod(in_shape)
        pe, _, z = self.encoder.init(ke, (d + self.noise,))
        pd, _, out = self.decoder.init(kd, (self.latent,))
        pc, _, t = self.critic.init(kc, (d + self.latent,))
        if tuple(z) != (self.latent,) or math.prod(t) != 1 or math.prod(out) != d:
            raise ValueError(
                f"AVB networks must map to the latent size {self.latent}, the input size {d} and one "
                f"logit; got {z}, {out}, {t}"
            )
        return {"encoder": pe, "decoder": pd, "critic": pc}, {}, tuple(in_shape)

    def encode(self, params: PyTree, x: Array, key: Array) -> Array:
        """One sample z ~ q(z|x) per example: E([x, eps]), eps ~ N(0, I) from ``key``."""
        flat = x.reshape(x.shape[0], -1)
        eps = jax.random.normal(key, (x.shape[0], self.noise), flat.dtype)
        return self.encoder.apply(params["encoder"], {}, jnp.concatenate([flat, eps], -1))[0]

    def draws(self, params: PyTree, x: Array, key: Array, samples: int) -> Array:
        """``samples`` draws z ~ q(z|x) per example, shape ``(samples, batch, latent)``."""
        return jax.vmap(lambda k: self.encode(params, x, k))(jax.random.split(key, samples))

    def moments(self, params: PyTree, x: Array, key: Array, samples: int) -> tuple[Array, Array]:
        """The mean and log-variance (+1e-6) per latent dimension of ``samples`` draws z ~ q(z|x) per example."""
        draws = self.draws(params, x, key, samples)
        return draws.mean(0), jnp.log(draws.var(0) + 1e-6)

    def contrast(self, params: PyTree, x: Array, z: Array, key: Array) -> tuple[Array, Array]:
        """Adaptive contrast for samples ``z`` of q(z|x): the normalised z~ and log r(z|x) - log p(z), r the diagonal
        Gaussian with the mean and variance of ``contrast_samples`` draws from ``key``, held constant."""
        mean, log_var = jax.lax.stop_gradient(self.moments(params, x, key, self.contrast_samples))
        z_c = (z - mean) * jnp.exp(-0.5 * log_var)
        log_r = gaussian_log_density(z_c) - 0.5 * jnp.sum(log_var, -1)  # log N(z | mean, var): z -> z~ changes volume
        return z_c, log_r - gaussian_log_density(z)

    def decode(self, params: PyTree, z: Array) -> Array:
        """Pixel logits of p(x|z), in the input's shape."""
        return self.decoder.apply(params["decoder"], {}, z)[0].reshape(z.shape[0], *self.input_shape)

    def critic_logits(self, params: PyTree, x: Array, z: Array) -> Array:
        """T(x, z), shape ``(batch,)``."""
        flat = x.reshape(x.shape[0], -1)
        return self.critic.apply(params["critic"], {}, jnp.concatenate([flat, z], -1))[0].reshape(x.shape[0])

    def terms(self, params: PyTree, x: Array, key: Array) -> dict[str, Array]:
        """Everything the objectives are made of, per example: the encoder's sample ``z_q`` and a prior sample
        ``z_p``; ``z_c``, what the critic sees of z_q (z_q itself, or with adaptive contrast the normalised z~ of
        ``contrast``); the critic on z_c and z_p (``t_q``, ``t_p``); ``kl``, the KL estimate t_q (+ log r(z_q|x) -
        log p(z_q) with adaptive contrast); ``reconstruction`` = -log p(x | z_q)."""
        kq, kp = jax.random.split(key)
        if self.contrast_samples:
            kq, km = jax.random.split(kq)
        z_q = self.encode(params, x, kq)
        z_p = jax.random.normal(kp, z_q.shape, z_q.dtype)
        z_c, log_ratio = z_q, jnp.zeros(z_q.shape[0], z_q.dtype)
        if self.contrast_samples:
            z_c, log_ratio = self.contrast(params, x, z_q, km)
        t_q = self.critic_logits(params, x, z_c)
        return {
            "z_q": z_q,
            "z_p": z_p,
            "z_c": z_c,
            "t_q": t_q,
            "t_p": self.critic_logits(params, x, z_p),
            "kl": t_q + log_ratio,
            "reconstruction": bernoulli_nll(self.decode(params, z_q), x),
        }

    def apply(self, params: PyTree, state: PyTree, x: Array, *, key: Array | None = None, train: bool = False):
        del train
        key = jax.random.PRNGKey(EVAL_KEY) if key is None else key
        return self.decode(params, self.encode(params, x, key)), state

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
        del model, y, train
        t = self.terms(params, x, jax.random.PRNGKey(EVAL_KEY) if key is None else key)
        return {
            "loss": t["kl"] + t["reconstruction"],
            "reconstruction": t["reconstruction"],
            "kl": t["kl"],
            "critic_loss": critic_loss(t["t_q"], t["t_p"]),
        }, state


def critic_loss(t_q: Array, t_p: Array) -> Array:
    """The critic's logistic loss per example: ``-log sigmoid(T(x, z_q)) - log(1 - sigmoid(T(x, z_p)))``."""
    return jax.nn.softplus(-t_q) + jax.nn.softplus(t_p)


def avb_parts(model: Model) -> AdversarialVB:
    """The networks of a model built by ``avb``; ``ValueError`` for any other model."""
    if not isinstance(model.objective, AdversarialVB):
        raise ValueError(f"{model.name} is not an adversarial-variational-Bayes model built by jaxnets.models.avb")
    return model.objective


def _mlp(widths: Sequence[int], out: int, prefix: str) -> Layer:
    layers = [
        layer
        for i, w in enumerate(widths)
        for layer in (nn.dense(w, w_init=nn.initializers.he_normal(), name=f"{prefix}{i + 1}"), nn.activation("relu"))
    ]
    return nn.serial(*layers, nn.dense(out, name="out"), name=prefix)


def avb(
    input_shape: Shape = (28, 28, 1),
    num_classes: int | None = None,
    latent: int = 8,
    noise: int | None = None,
    hidden: Sequence[int] = (256, 256),
    critic_hidden: Sequence[int] = (256, 256),
    adaptive_contrast: bool = False,
    contrast_samples: int = 16,
) -> Model:
    """AVB with MLPs (ReLU): encoder [x, eps (``noise`` dims, default ``latent``)] -> ``hidden`` -> z (``latent``),
    decoder z -> ``hidden`` reversed -> Bernoulli logits of x, critic [x, z] -> ``critic_hidden`` -> 1. The paper's
    four-point toy: ``avb((4,), latent=2, hidden=(64, 64), critic_hidden=(64, 64))`` on one-hot inputs.
    ``adaptive_contrast``: the critic sees z normalised by q's mean and standard deviation, estimated from
    ``contrast_samples`` (>= 2) extra encoder draws per example (see the module's docstring)."""
    del num_classes
    noise = latent if noise is None else noise
    check_sizes("avb", latent=latent, noise=noise)
    if adaptive_contrast and contrast_samples < 2:
        raise ValueError(f"avb: contrast_samples must be >= 2 with adaptive_contrast; got {contrast_samples}")
    input_shape = tuple(input_shape)
    parts = AdversarialVB(
        _mlp(hidden, latent, "encoder"),
        _mlp(tuple(hidden)[::-1], math.prod(input_shape), "decoder"),
        _mlp(critic_hidden, 1, "critic"),
        latent,
        noise,
        input_shape,
        contrast_samples if adaptive_contrast else 0,
    )
    return Model("avb", Layer(parts.init, parts.apply, "avb"), input_shape, objective=parts)


@functools.partial(jax.jit, static_argnums=(0, 4, 5, 6))
def avb_log_likelihood(
    model: Model, params: PyTree, x: Array, key: Array, k: int = 5000, chunk: int = 100, fit_samples: int = 256
) -> Array:
    """Per-example ``L_k`` (nats), a k-sample importance-weighted lower bound on log p(x) under an ``avb`` model's
    Bernoulli decoder, for binary ``x``. The implicit encoder has no density, so the proposal is a diagonal Gaussian
    fitted to it: the mean and variance of ``fit_samples`` draws E(x, eps) per example. Any proposal gives a lower
    bound (the critic plays no part), tighter the closer it is to the posterior; weights are drawn ``chunk`` at a
    time (``k`` a multiple of ``chunk``, or ``chunk`` is lowered to ``k``), as in ``vae_log_likelihood``."""
    parts = avb_parts(model)
    chunk = min(chunk, k)
    if k % chunk:
        raise ValueError(f"k ({k}) must be a multiple of chunk ({chunk})")
    fit_key, key = jax.random.split(key)
    mean, log_var = parts.moments(params, x, fit_key, fit_samples)
    targets = jnp.broadcast_to(x, (chunk, *x.shape)).reshape(-1, *x.shape[1:])

    def body(total, kc):
        z = mean + jnp.exp(0.5 * log_var) * jax.random.normal(kc, (chunk, *mean.shape), mean.dtype)
        log_px = -bernoulli_nll(parts.decode(params, z.reshape(-1, parts.latent)), targets).reshape(chunk, -1)
        log_w = log_px + gaussian_log_density(z) - gaussian_log_density(z, mean, log_var)
        return jnp.logaddexp(total, jax.nn.logsumexp(log_w, 0)), None

    total, _ = jax.lax.scan(body, jnp.full((x.shape[0],), -jnp.inf, mean.dtype), jax.random.split(key, k // chunk))
    return total - jnp.log(float(k))
