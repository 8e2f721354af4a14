"""A faithful VAE score: the importance-weighted estimate of log p(x) (Burda, Grosse & Salakhutdinov 2016) under a
VAE's Bernoulli decoder, with its encoder's q(z|x) as the proposal:

    log p(x) >= L_k = E[log (1/k) sum_i p(x|z_i) p(z_i) / q(z_i|x)],   z_i ~ q(z|x),

L_1 the ELBO, L_k rising with k to log p(x). Test negative log-likelihoods of binarised MNIST in the literature are
-L_5000 (Burda et al. 2016, table 1).
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp

from jaxnets.losses import bernoulli_nll, gaussian_log_density
from jaxnets.models._autoencoders import ELBO
from jaxnets.models._base import Model
from jaxnets.nn import PyTree

Array = jax.Array


def vae_log_weights(model: Model, params: PyTree, state: PyTree, x: Array, key: Array, k: int) -> Array:
    """``(k, batch)`` log importance weights ``log p(x|z) + log p(z) - log q(z|x)``, z ~ q(z|x) drawn with ``key``."""
    elbo = model.objective
    if not isinstance(elbo, ELBO):
        raise ValueError(f"{model.name} is not a VAE built by jaxnets.models.vae (it has no q(z|x) to sample)")
    mean, log_var, _ = elbo.encode(params, state, x)
    z = mean + jnp.exp(0.5 * log_var) * jax.random.normal(key, (k, *mean.shape), mean.dtype)
    logits, _ = elbo.decode(params, state, z.reshape(-1, elbo.latent))
    targets = jnp.broadcast_to(x, (k, *x.shape)).reshape(-1, *x.shape[1:])
    log_px = -bernoulli_nll(logits, targets).reshape(k, -1)
    return log_px + gaussian_log_density(z) - gaussian_log_density(z, mean, log_var)


@functools.partial(jax.jit, static_argnums=(0, 5, 6))
def vae_log_likelihood(
    model: Model, params: PyTree, state: PyTree, x: Array, key: Array, k: int = 5000, chunk: int = 100
) -> Array:
    """Per-example ``L_k`` (nats), the k-sample importance-weighted lower bound on log p(x), for binary ``x``;
    the weights are drawn ``chunk`` at a time and combined by a running log-sum-exp, so memory does not grow with
    ``k`` (a multiple of ``chunk``, or ``chunk`` is lowered to ``k``)."""
    chunk = min(chunk, k)
    if k % chunk:
        raise ValueError(f"k ({k}) must be a multiple of chunk ({chunk})")

    def body(total, key):
        return jnp.logaddexp(total, jax.nn.logsumexp(vae_log_weights(model, params, state, x, key, chunk), 0)), None

    start = jnp.full((x.shape[0],), -jnp.inf, jnp.float32)
    total, _ = jax.lax.scan(body, start, jax.random.split(key, k // chunk))
    return total - jnp.log(float(k))
