"""Dense, flatten, reshape, upsample, dropout and the normalisations as pure layers with named parameter dicts."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp

from jaxnets.nn import initializers as inits
from jaxnets.nn._core import Layer, Shape, stateless

Array = jax.Array


def dense(
    features: int,
    *,
    w_init: inits.Initializer | None = None,
    b_init: inits.Initializer = inits.zeros,
    name: str = "dense",
) -> Layer:
    """Affine map ``x @ w + b`` over the last axis; params ``{'w': (in, features), 'b': (features,)}``."""
    if features < 1:
        raise ValueError(f"{name}: features (output units) must be >= 1; got {features}")
    w_init = w_init or inits.lecun_normal()

    def init(key: Array, in_shape: Shape):
        kw, kb = jax.random.split(key)
        fan_in = in_shape[-1]
        return {"w": w_init(kw, (fan_in, features)), "b": b_init(kb, (features,))}, {}, (*in_shape[:-1], features)

    def apply(params, state, x, *, key=None, train=False):
        del key, train
        return x @ params["w"] + params["b"], state

    return Layer(init, apply, name)


def flatten(name: str = "flatten") -> Layer:
    """Flatten all per-example axes into one."""
    return stateless(name, lambda x: x.reshape(x.shape[0], -1), lambda s: (math.prod(s),))


def dropout(rate: float, name: str = "dropout") -> Layer:
    """Zero each unit with probability ``rate`` during training (scaling survivors by 1/(1-rate)); identity in eval."""
    if not 0.0 <= rate < 1.0:
        raise ValueError(f"dropout rate is the probability of dropping a unit and must be in [0, 1); got {rate}")

    def init(key: Array, in_shape: Shape):
        return {}, {}, tuple(in_shape)

    def apply(params, state, x, *, key=None, train=False):
        if not train or rate == 0.0:
            return x, state
        if key is None:
            raise ValueError("dropout needs a PRNG key in training mode: call apply(..., key=key, train=True)")
        keep = jax.random.bernoulli(key, 1.0 - rate, x.shape)
        return jnp.where(keep, x / (1.0 - rate), 0.0), state

    return Layer(init, apply, name)


def batch_norm(momentum: float = 0.9, eps: float = 1e-5, name: str = "batch_norm") -> Layer:
    """Normalise each channel (last axis) over batch and spatial axes, then scale and shift.

    In training the batch statistics are used and the running averages in ``state`` are updated as
    ``ra = momentum * ra + (1 - momentum) * batch``; in evaluation the running averages are used.
    """

    def init(key: Array, in_shape: Shape):
        c = in_shape[-1]
        params = {"scale": jnp.ones((c,)), "bias": jnp.zeros((c,))}
        state = {"mean": jnp.zeros((c,)), "var": jnp.ones((c,))}
        return params, state, tuple(in_shape)

    def apply(params, state, x, *, key=None, train=False):
        del key
        axes = tuple(range(x.ndim - 1))
        if train:
            mean = jnp.mean(x, axes)
            var = jnp.mean(jnp.square(x - mean), axes)
            state = {
                "mean": momentum * state["mean"] + (1 - momentum) * mean,
                "var": momentum * state["var"] + (1 - momentum) * var,
            }
        else:
            mean, var = state["mean"], state["var"]
        y = (x - mean) * jax.lax.rsqrt(var + eps)
        return y * params["scale"] + params["bias"], state

    return Layer(init, apply, name)


def lrn(size: int = 5, alpha: float = 1e-4, beta: float = 0.75, k: float = 2.0, name: str = "lrn") -> Layer:
    """Local response normalisation across channels (Krizhevsky, Sutskever & Hinton 2012, section 3.3):

        b_i = a_i / (k + alpha * sum_{j = i - size//2}^{i + (size-1)//2} a_j^2) ** beta

    over the last (channel) axis, the sum clipped at the first and last channel; the defaults are the paper's
    (n = 5, alpha = 1e-4, beta = 0.75, k = 2). As in the paper, ``alpha`` multiplies the sum itself: PyTorch's
    ``LocalResponseNorm`` divides it by ``size`` first (pass ``alpha * size`` there to get this layer).
    """
    if size < 1:
        raise ValueError(f"lrn size (the number of adjacent channels summed) must be >= 1; got {size}")

    def init(key: Array, in_shape: Shape):
        del key
        return {}, {}, tuple(in_shape)

    def apply(params, state, x, *, key=None, train=False):
        del key, train
        c = x.shape[-1]
        j, i = jnp.arange(c)[:, None], jnp.arange(c)[None, :]
        band = ((j >= i - size // 2) & (j <= i + (size - 1) // 2)).astype(x.dtype)  # band[j, i]: a_j is in i's sum
        return x / (k + alpha * (jnp.square(x) @ band)) ** beta, state

    return Layer(init, apply, name)


def reshape(shape: Shape, name: str = "reshape") -> Layer:
    """Reshape each example to ``shape``."""
    shape = tuple(int(d) for d in shape)
    return stateless(name, lambda x: x.reshape(x.shape[0], *shape), lambda s: shape)


UPSAMPLING = ("nearest", "bilinear")


def upsample(factor: int = 2, name: str = "upsample", *, method: str = "nearest") -> Layer:
    """Upsampling of every spatial axis by ``factor`` (channels-last). ``method='nearest'``: each pixel becomes a
    ``factor x factor`` block; with a convolution after it, the artefact-free alternative to a transposed
    convolution (Odena, Dumoulin & Olah 2016). ``'bilinear'``: (multi)linear interpolation with half-pixel centres,
    edges clamped (PyTorch's ``align_corners=False``; ``jax.image.resize``), as FCN's fixed upsampling."""
    if factor < 1:
        raise ValueError(f"upsample factor must be >= 1; got {factor}")
    if method not in UPSAMPLING:
        raise ValueError(f"upsample method must be one of {UPSAMPLING}; got {method!r}")

    def fn(x: Array) -> Array:
        if method == "bilinear":
            shape = (x.shape[0], *(d * factor for d in x.shape[1:-1]), x.shape[-1])
            return jax.image.resize(x, shape, "linear")
        for axis in range(1, x.ndim - 1):
            x = jnp.repeat(x, factor, axis=axis)
        return x

    return stateless(name, fn, lambda s: (*(d * factor for d in s[:-1]), s[-1]))
