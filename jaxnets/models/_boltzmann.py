"""The restricted Boltzmann machine, contrastive divergence, and greedy layer-wise pretraining of a deep network.

A Bernoulli-Bernoulli RBM (Smolensky 1986; Hinton 2002) has visible units v and hidden units h, both binary, and
energy E(v, h) = -v.b_v - h.b - v W h. Summing out h gives the free energy

    F(v) = -v.b_v - sum_j softplus(b_j + (v W)_j),        p(v) = exp(-F(v)) / Z,

and p(h_j = 1 | v) = sigmoid(b_j + (v W)_j), p(v_i = 1 | h) = sigmoid(b_v,i + (W h)_i). The log-likelihood gradient
is <v h>_data - <v h>_model; contrastive divergence CD-k (Hinton 2002) replaces the model expectation by one taken at
the end of k Gibbs steps started at the data:

    dW = <v0 p(h|v0)> - <vk p(h|vk)>,    db = <p(h|v0)> - <p(h|vk)>,    db_v = <v0> - <vk>.

That update is exactly minus the gradient of the surrogate ``mean F(v0) - F(stop_gradient(vk))``, since
dF/dW = -v p(h|v)^T: so CD trains through the ordinary ``jax.grad`` + optax path (``fit``, ``train.py``). The
surrogate's *value* is not a likelihood and need not fall (on MNIST its training mean rose from -0.6 to 3.4 over 10
epochs while the model improved); ``squared_error`` (the one-step mean-field reconstruction error per image) is the
usual progress measure.

``jaxnets.train.pretrain_stack`` is Hinton, Osindero & Teh (2006)'s greedy layer-wise pretraining: an RBM per
layer, each trained on the hidden probabilities of the one below, giving the weights of a deep sigmoid network to
fine-tune by backpropagation (``with_initial_params`` + ``fit``). The energy and the CD surrogate are in
``jaxnets.losses`` (``free_energy``, ``contrastive_divergence``).
"""

from __future__ import annotations

from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np

from jaxnets import nn
from jaxnets.losses import contrastive_divergence, free_energy
from jaxnets.models._base import Model
from jaxnets.nn import Layer, PyTree, Shape

Array = jax.Array


def rbm_layer(hidden: int, *, w_std: float = 0.01, name: str = "rbm") -> Layer:
    """An RBM's parameters as a layer: ``{'w': (visible, hidden), 'b': (hidden,), 'b_visible': (visible,)}``
    (``w``/``b`` named as a dense layer's, so that they initialise one). Weights N(0, ``w_std``^2), biases 0 (Hinton's
    practical guide, 2010). ``apply`` is the deterministic (mean-field) reconstruction: the visible logits
    ``p(h|v) W^T + b_v`` of each example, in the input's shape."""

    def init(key: Array, in_shape: Shape):
        visible = int(np.prod(in_shape))
        params = {
            "w": w_std * jax.random.normal(key, (visible, hidden)),
            "b": jnp.zeros((hidden,)),
            "b_visible": jnp.zeros((visible,)),
        }
        return params, {}, tuple(in_shape)

    def apply(params, state, x, *, key=None, train=False):
        del key, train
        v = x.reshape(x.shape[0], -1)
        return visible_logits(params, hidden_probs(params, v)).reshape(x.shape), state

    return Layer(init, apply, name)


def hidden_probs(params: PyTree, v: Array) -> Array:
    """p(h_j = 1 | v) = sigmoid(b_j + (v W)_j) for a batch of flat visible vectors."""
    return jax.nn.sigmoid(v @ params["w"] + params["b"])


def visible_logits(params: PyTree, h: Array) -> Array:
    """The logits of p(v_i = 1 | h): b_v,i + (W h)_i."""
    return h @ params["w"].T + params["b_visible"]


def gibbs_step(params: PyTree, v: Array, key: Array, sample_visible: bool = True) -> Array:
    """One step of block Gibbs sampling v -> h ~ p(h|v) -> v' ~ p(v|h) (v' = p(v|h) itself when not
    ``sample_visible``, Hinton's guide's lower-noise variant)."""
    kh, kv = jax.random.split(key)
    h = jax.random.bernoulli(kh, hidden_probs(params, v)).astype(v.dtype)
    pv = jax.nn.sigmoid(visible_logits(params, h))
    return jax.random.bernoulli(kv, pv).astype(v.dtype) if sample_visible else pv


def gibbs_chain(params: PyTree, v0: Array, key: Array, k: int = 1, sample_visible: bool = True) -> Array:
    """v_k after ``k`` Gibbs steps from v0 (the negative phase of CD-k), with no gradient through it."""
    v = v0
    for kk in jax.random.split(key, k):
        v = gibbs_step(params, v, kk, sample_visible)
    return jax.lax.stop_gradient(v)


def cd_surrogate(params: PyTree, v0: Array, key: Array, k: int = 1, sample_visible: bool = True) -> Array:
    """Per-example F(v0) - F(stop_gradient(v_k)) (``losses.contrastive_divergence``) with v_k drawn by ``k`` Gibbs
    steps from v0: minus its batch-mean gradient is the CD-k update."""
    return contrastive_divergence(params, v0, gibbs_chain(params, v0, key, k, sample_visible))


def cd_update(params: PyTree, v0: Array, vk: Array) -> PyTree:
    """The CD update written out (batch means): dW = <v0 p(h|v0)> - <vk p(h|vk)>, db = <p(h|v0)> - <p(h|vk)>,
    db_v = <v0> - <vk>. For tests and teaching; training uses ``jax.grad`` of ``cd_surrogate``."""
    n = v0.shape[0]
    h0, hk = hidden_probs(params, v0), hidden_probs(params, vk)
    return {"w": (v0.T @ h0 - vk.T @ hk) / n, "b": jnp.mean(h0 - hk, axis=0), "b_visible": jnp.mean(v0 - vk, axis=0)}


@dataclass(frozen=True)
class ContrastiveDivergence:
    """The RBM's objective: ``loss`` = the CD-k surrogate ``F(v0) - F(v_k)`` (its gradient is the CD-k update),
    ``squared_error`` = summed squared error of the mean-field one-step reconstruction, ``free_energy`` = F(v0).
    Labels are ignored. Without a key (evaluation) the chain uses a fixed one."""

    k: int = 1
    sample_visible: bool = True
    layer: str = "rbm"

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
        logits, state = model.apply(params, state, x)  # checks the input shape; mean-field reconstruction
        p = params[self.layer]
        v0 = x.reshape(x.shape[0], -1)
        key = jax.random.PRNGKey(0) if key is None else key
        err = jax.nn.sigmoid(logits).reshape(v0.shape) - v0
        return {
            "loss": cd_surrogate(p, v0, key, self.k, self.sample_visible),
            "squared_error": jnp.sum(err**2, axis=1),
            "free_energy": free_energy(p, v0),
        }, state


def rbm(
    input_shape: Shape = (28, 28, 1),
    num_classes: int | None = None,
    hidden: int = 500,
    k: int = 1,
    sample_visible: bool = True,
    w_std: float = 0.01,
) -> Model:
    """Bernoulli-Bernoulli RBM trained by CD-``k`` (Hinton 2002) on inputs in [0, 1] (pixel intensities are taken
    as the probabilities of binary pixels). Parameters ``{'rbm': {'w', 'b', 'b_visible'}}``; ``apply`` gives the
    mean-field reconstruction logits; ``num_classes`` is ignored."""
    del num_classes
    if k < 1 or hidden < 1:
        raise ValueError(f"an RBM needs k >= 1 Gibbs steps and hidden >= 1 units; got k={k}, hidden={hidden}")
    return Model(
        "rbm",
        nn.serial(rbm_layer(hidden, w_std=w_std, name="rbm"), name="rbm"),
        tuple(input_shape),
        objective=ContrastiveDivergence(k, sample_visible),
    )


def with_initial_params(model: Model, params: PyTree) -> Model:
    """``model`` whose ``init`` starts from ``params`` for the layers they name (e.g. a pretrained stack) and from
    its own initialisers for the rest (e.g. the output layer), so that ``fit`` fine-tunes from there. Shapes must
    match the model's own."""
    layer = model.layer

    def merge(own: PyTree, given: PyTree, path: str) -> PyTree:
        if not isinstance(given, dict):
            if not isinstance(own, jax.Array | np.ndarray) or jnp.shape(own) != jnp.shape(given):
                raise ValueError(
                    f"{model.name}: given parameter {path} has shape {jnp.shape(given)}, the model's {jnp.shape(own)}"
                )
            return jnp.array(given, jnp.result_type(own), copy=True)  # a copy: training donates its buffers
        if not isinstance(own, dict) or not set(given) <= set(own):
            raise ValueError(
                f"{model.name}: given parameters {path or '/'} {sorted(given)} are not among the "
                f"model's {sorted(own) if isinstance(own, dict) else 'arrays'}"
            )
        return {k: merge(v, given[k], f"{path}/{k}") if k in given else v for k, v in own.items()}

    def init(key: Array, in_shape: Shape):
        own, state, out = layer.init(key, in_shape)
        return merge(own, params, ""), state, out

    return Model(model.name, Layer(init, layer.apply, layer.name), model.input_shape, model.head, model.objective)
