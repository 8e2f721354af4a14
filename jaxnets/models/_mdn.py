"""Mixture density networks (Bishop 1994) and the heteroscedastic Gaussian regressor (an MDN with one component).

An MDN's outputs are packed per example as ``[logits (K), means (K*D), log_scales (K*D)]``: ``split_mixture`` unpacks
them; the objective is ``losses.mdn_nll`` (a log-sum-exp over the components). ``mdn_head`` puts such a head on any
network's features.

Bivariate components with a correlation (Graves 2013, handwriting): ``bivariate_nll`` factors each component as
p(y1) p(y2 | y1), two 1-D Gaussians, so that it is ``losses.mdn_nll`` on per-component conditional means and scales;
``sample_bivariate`` draws from such a mixture with Graves' sampling bias.
"""

from __future__ import annotations

from collections.abc import Sequence

import jax
import jax.numpy as jnp

from jaxnets import losses, nn
from jaxnets.models._base import Model

Array = jax.Array


def mdn_head(components: int, out_dim: int = 1, name: str = "mdn") -> nn.Layer:
    """A dense layer to the ``components * (1 + 2 * out_dim)`` packed parameters of a diagonal Gaussian mixture."""
    if components < 1 or out_dim < 1:
        raise ValueError(f"an MDN head needs components >= 1 and out_dim >= 1; got {components}, {out_dim}")
    return nn.dense(components * (1 + 2 * out_dim), w_init=nn.initializers.glorot_uniform(), name=name)


def split_mixture(outputs: Array, components: int) -> tuple[Array, Array, Array]:
    """Packed MDN outputs (batch, K*(1+2D)) -> logits (batch, K), means and log-scales (batch, K, D)."""
    size = outputs.shape[-1]
    if size % components or (size // components - 1) % 2:
        raise ValueError(f"MDN outputs of size {size} do not pack {components} components of [weight, mean, scale]")
    d = (size // components - 1) // 2
    logits = outputs[:, :components]
    means = outputs[:, components : components * (1 + d)].reshape(-1, components, d)
    log_scales = outputs[:, components * (1 + d) :].reshape(-1, components, d)
    return logits, means, log_scales


def mixture_moments(outputs: Array, components: int) -> tuple[Array, Array]:
    """Mean and variance (batch, D) of each predicted mixture: E[y] = sum pi_k mu_k, Var[y] = sum pi_k sigma_k^2
    (within components) + sum pi_k (mu_k - E[y])^2 (between them), the law of total variance."""
    logits, means, log_scales = split_mixture(outputs, components)
    pi = jax.nn.softmax(logits, axis=-1)[..., None]
    mean = jnp.sum(pi * means, axis=1)
    variance = jnp.sum(pi * (jnp.exp(2 * log_scales) + jnp.square(means - mean[:, None, :])), axis=1)
    return mean, variance


def mixture_density(outputs: Array, components: int, grid: Array) -> Array:
    """Densities p(y | x) (batch, G) of one-dimensional mixtures on the points ``grid`` (G,)."""
    logits, means, log_scales = split_mixture(outputs, components)
    if means.shape[-1] != 1:
        raise ValueError(f"mixture_density draws 1-D mixtures; these have {means.shape[-1]} output dimensions")
    targets = jnp.broadcast_to(grid[None, :, None], (outputs.shape[0], grid.shape[0], 1))
    nll = jax.vmap(lambda t: losses.mdn_nll(logits, means, log_scales, t), in_axes=1, out_axes=1)(targets)
    return jnp.exp(-nll)


def _log1m_tanh_sq(rho_logits: Array) -> Array:
    """log(1 - tanh(r)^2) = 2 (log 2 - |r| - softplus(-2 |r|)), finite for any ``r`` (where 1 - rho^2 underflows)."""
    a = jnp.abs(rho_logits)
    return 2.0 * (jnp.log(2.0) - a - jax.nn.softplus(-2.0 * a))


def bivariate_nll(logits: Array, means: Array, log_scales: Array, rho_logits: Array, targets: Array) -> Array:
    """Per-example -log p(targets) of a mixture of bivariate Gaussians with correlations ``tanh(rho_logits)``
    (batch, K): weights ``softmax(logits)`` (batch, K), ``means``/``log_scales`` (batch, K, 2), ``targets`` (batch, 2).
    Each component is N(y1; mu1, s1) N(y2; mu2 + rho s2 z1, s2 sqrt(1 - rho^2)) with z1 = (y1 - mu1) / s1:
    ``losses.mdn_nll`` of those diagonal factors, its log-sum-exp included."""
    if means.shape[-1] != 2 or rho_logits.shape != means.shape[:-1]:
        raise ValueError(
            f"bivariate_nll needs means (batch, K, 2) and rho_logits (batch, K); got {means.shape}, {rho_logits.shape}"
        )
    rho = jnp.tanh(rho_logits)
    z1 = (targets[:, None, 0] - means[..., 0]) * jnp.exp(-log_scales[..., 0])
    mean2 = means[..., 1] + rho * jnp.exp(log_scales[..., 1]) * z1
    log_scale2 = log_scales[..., 1] + 0.5 * _log1m_tanh_sq(rho_logits)
    return losses.mdn_nll(
        logits,
        jnp.stack([means[..., 0], mean2], axis=-1),
        jnp.stack([log_scales[..., 0], log_scale2], axis=-1),
        targets,
    )


def sample_bivariate(
    key: Array, logits: Array, means: Array, log_scales: Array, rho_logits: Array, bias: float | Array = 0.0
) -> Array:
    """One draw (batch, 2) from each bivariate mixture (shapes as ``bivariate_nll``), with Graves' (2013) sampling
    bias b >= 0: weights ``softmax(logits * (1 + b))`` and scales ``exp(log_scales - b)`` (b = 0: the model's own
    density; larger b: likelier, neater draws)."""
    k_comp, k_noise = jax.random.split(key)
    comp = jax.random.categorical(k_comp, logits * (1.0 + bias), axis=-1)
    mu = jnp.take_along_axis(means, comp[:, None, None], axis=1)[:, 0]
    scale = jnp.exp(jnp.take_along_axis(log_scales, comp[:, None, None], axis=1)[:, 0] - bias)
    rho = jnp.tanh(jnp.take_along_axis(rho_logits, comp[:, None], axis=1)[:, 0])
    z = jax.random.normal(k_noise, mu.shape, mu.dtype)
    z2 = rho * z[:, 0] + jnp.sqrt(1.0 - jnp.square(rho)) * z[:, 1]
    return mu + scale * jnp.stack([z[:, 0], z2], axis=-1)


def mdn(
    input_shape: Sequence[int] = (1,),
    num_classes: int | None = None,
    components: int = 3,
    out_dim: int = 1,
    hidden: Sequence[int] = (20,),
    activation: str = "tanh",
    dropout: float = 0.0,
    name: str = "mdn",
) -> Model:
    """MLP (``hidden`` widths of ``activation``, optional ``dropout`` after each) with an MDN head of ``components``
    diagonal Gaussians over ``out_dim`` targets; trained on targets (batch, out_dim) (or (batch,) for one) by the NLL
    (nats per example), also reporting the squared error of the mixture mean. ``num_classes`` is ignored."""
    del num_classes
    nn.get_activation(activation)
    w_init = nn.initializers.for_activation(activation)
    layers = [nn.flatten()]
    for i, width in enumerate(hidden, start=1):
        layers += [nn.dense(width, w_init=w_init, name=f"hidden{i}"), nn.activation(activation)]
        if dropout:
            layers.append(nn.dropout(dropout, name=f"dropout{i}"))
    layers.append(mdn_head(components, out_dim))

    def objective(
        model: Model, params, state, x: Array, y: Array, *, key: Array | None = None, train: bool = False
    ) -> tuple[dict[str, Array], nn.PyTree]:
        outputs, state = model.apply(params, state, x, key=key, train=train)
        if out_dim == 1 and y.ndim == 1:
            y = y[:, None]
        if y.shape != (x.shape[0], out_dim):
            raise ValueError(f"{model.name} targets must have shape (batch, {out_dim}); got {tuple(y.shape)}")
        y = y.astype(outputs.dtype)
        mean, _ = mixture_moments(outputs, components)
        return {
            "loss": losses.mdn_nll(*split_mixture(outputs, components), y),
            "squared_error": jnp.sum(jnp.square(mean - y), axis=1),
        }, state

    return Model(name, nn.serial(*layers), tuple(input_shape), head="linear", objective=objective)


def heteroscedastic(
    input_shape: Sequence[int] = (1,),
    num_classes: int | None = None,
    out_dim: int = 1,
    hidden: Sequence[int] = (50, 50),
    activation: str = "relu",
    dropout: float = 0.0,
    name: str = "heteroscedastic",
) -> Model:
    """A regressor predicting a mean and a variance per input (Nix & Weigend 1994; the member of Lakshminarayanan et
    al.'s 2017 deep ensembles), trained by the Gaussian NLL: ``mdn`` with one component."""
    return mdn(
        input_shape,
        num_classes,
        components=1,
        out_dim=out_dim,
        hidden=hidden,
        activation=activation,
        dropout=dropout,
        name=name,
    )
