"""Adversarial variational Bayes (Mescheder, Nowozin & Geiger 2017).

The encoder is *implicit*: z = E(x, eps) with eps ~ N(0, I) fed in beside x, so q(z|x) may be any shape but has no
density to put in the ELBO. A critic T(x, z), trained to tell (x, z ~ q(z|x)) from (x, z ~ p(z)) by logistic
regression, has the optimum T*(x, z) = log q(z|x) - log p(z) (the paper's proposition 1), so

    ELBO(x) = E_q[log p(x|z) - (log q(z|x) - log p(z))] ~= E_eps[log p(x | E(x, eps)) - T(x, E(x, eps))].

The ``Model``'s parameters are ``encoder``, ``decoder`` and ``critic``; ``apply(params, state, x)`` gives the
reconstruction logits; ``metrics`` gives 'loss' = T + reconstruction (the negative ELBO estimate), 'reconstruction'
(-log p(x|z), Bernoulli), 'kl' (T at the encoder's sample: the KL estimate) and 'critic_loss'. Training:
``jaxnets.train.avb_step`` (the autoencoder and the critic, each with its own optimiser).
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
    [x, z] -> one logit."""

    encoder: Layer
    decoder: Layer
    critic: Layer
    latent: int
    noise: int
    input_shape: Shape

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

    def decode(self, params: PyTree, z: Array) -> Array:
        """Pixel logits of p(x|z), in the input's shape."""
        return self.decoder.apply(params["decoder"], {}, z)[0].reshape(z.shape[0], *self.input_shape)

    def critic_logits(self, params: PyTree, x: Array, z: Array) -> Array:
        """T(x, z), shape ``(batch,)``."""
        flat = x.reshape(x.shape[0], -1)
        return self.critic.apply(params["critic"], {}, jnp.concatenate([flat, z], -1))[0].reshape(x.shape[0])

    def terms(self, params: PyTree, x: Array, key: Array) -> dict[str, Array]:
        """Everything the objectives are made of, per example: the encoder's sample ``z_q`` and a prior sample
        ``z_p``, the critic on both (``t_q``, ``t_p``), and ``reconstruction`` = -log p(x | z_q)."""
        kq, kp = jax.random.split(key)
        z_q = self.encode(params, x, kq)
        z_p = jax.random.normal(kp, z_q.shape, z_q.dtype)
        return {
            "z_q": z_q,
            "z_p": z_p,
            "t_q": self.critic_logits(params, x, z_q),
            "t_p": self.critic_logits(params, x, z_p),
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
            "loss": t["t_q"] + t["reconstruction"],
            "reconstruction": t["reconstruction"],
            "kl": t["t_q"],
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
) -> Model:
    """AVB with MLPs (ReLU): encoder [x, eps (``noise`` dims, default ``latent``)] -> ``hidden`` -> z (``latent``),
    decoder z -> ``hidden`` reversed -> Bernoulli logits of x, critic [x, z] -> ``critic_hidden`` -> 1. The paper's
    four-point toy: ``avb((4,), latent=2, hidden=(64, 64), critic_hidden=(64, 64))`` on one-hot inputs."""
    del num_classes
    noise = latent if noise is None else noise
    check_sizes("avb", latent=latent, noise=noise)
    input_shape = tuple(input_shape)
    parts = AdversarialVB(
        _mlp(hidden, latent, "encoder"),
        _mlp(tuple(hidden)[::-1], math.prod(input_shape), "decoder"),
        _mlp(critic_hidden, 1, "critic"),
        latent,
        noise,
        input_shape,
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
    draws = jax.vmap(lambda kd: parts.encode(params, x, kd))(jax.random.split(fit_key, fit_samples))
    mean, log_var = draws.mean(0), jnp.log(draws.var(0) + 1e-6)
    targets = jnp.broadcast_to(x, (chunk, *x.shape)).reshape(-1, *x.shape[1:])

    def body(total, kc):
        z = mean + jnp.exp(0.5 * log_var) * jax.random.normal(kc, (chunk, *mean.shape), mean.dtype)
        log_px = -bernoulli_nll(parts.decode(params, z.reshape(-1, parts.latent)), targets).reshape(chunk, -1)
        log_w = log_px + gaussian_log_density(z) - gaussian_log_density(z, mean, log_var)
        return jnp.logaddexp(total, jax.nn.logsumexp(log_w, 0)), None

    total, _ = jax.lax.scan(body, jnp.full((x.shape[0],), -jnp.inf, mean.dtype), jax.random.split(key, k // chunk))
    return total - jnp.log(float(k))
