"""Training recipes that wrap a model, so that ``fit`` and ``make_train_step`` run them inside the compiled step:
``augmented`` (a random augmentation of each training batch) and ``mixed_precision`` (compute in bfloat16 or
float16 on float32 parameters, with static loss scaling for float16)."""

from __future__ import annotations

import dataclasses
import functools
from typing import Any

import jax
import jax.numpy as jnp

from jaxnets.data import Augment
from jaxnets.models import Model
from jaxnets.nn import Layer

DTYPES = ("float32", "bfloat16", "float16")
LOSS_SCALE = 2.0**15  # float16's static loss scale (jmp's and PyTorch's dynamic scalers start about here)


def augmented(model: Model, augment: Augment | None) -> Model:
    """``model`` whose training passes (``train=True``, as in ``fit``'s step) first apply ``augment(key, x)`` to the
    batch, with a key split off the step's key: the same seed and step give the same batch, so a resumed run
    stays bitwise the uninterrupted one. Evaluation (``train=False``) sees the images as they are; ``None``: the
    model unchanged."""
    if augment is None:
        return model
    layer = model.layer

    def apply(params, state, x, *, key=None, train=False):
        if train:
            if key is None:
                raise ValueError(f"{model.name}: an augmented model needs a key when train=True")
            key, augment_key = jax.random.split(key)
            x = augment(augment_key, x)
        return layer.apply(params, state, x, key=key, train=train)

    return dataclasses.replace(model, layer=Layer(layer.init, apply, layer.name))


@functools.partial(jax.custom_vjp, nondiff_argnums=(1,))
def _scale_gradient(x: Any, scale: float) -> Any:
    """The identity whose gradient is multiplied by ``scale``."""
    return x


def _scale_forward(x, scale):
    return x, None


def _scale_backward(scale, _, g):
    # (integer inputs, token ids, have float0 cotangents: nothing to scale)
    return (jax.tree.map(lambda t: t if t.dtype == jax.dtypes.float0 else t * jnp.asarray(scale, t.dtype), g),)


_scale_gradient.defvjp(_scale_forward, _scale_backward)


def _cast(tree: Any, dtype: Any) -> Any:
    """The floating-point leaves of ``tree`` as ``dtype`` (integers, keys and booleans as they are)."""
    return jax.tree.map(lambda a: a.astype(dtype) if jnp.issubdtype(jnp.result_type(a), jnp.floating) else a, tree)


def mixed_precision(model: Model, dtype: str = "bfloat16", loss_scale: float | None = None) -> Model:
    """``model`` training in ``dtype`` ('bfloat16' or 'float16'; 'float32': unchanged) on float32 parameters: its
    training passes (``train=True``) cast the parameters, state and inputs to ``dtype`` and give float32 outputs (so
    the loss, the gradients and the optimiser's update are float32) and the state back in its own dtypes.
    Evaluation (``train=False``) computes in float32, as the model ``jaxnets.load`` rebuilds from the run does, so
    ``jaxnets-evaluate`` reproduces a run's test metrics exactly.

    ``loss_scale`` (default: none for bfloat16, which has float32's range; ``LOSS_SCALE`` = 2^15 for float16) is
    static loss scaling: the backward pass runs on gradients multiplied by it, divided out again in float32 at the
    parameters and inputs, so small float16 gradients do not flush to zero. A step whose scaled gradients overflow
    gives non-finite updates: ``train.run`` wraps float16's optimiser in ``optax.apply_if_finite`` to skip them."""
    if dtype not in DTYPES:
        raise ValueError(f"dtype must be one of {', '.join(DTYPES)}; got {dtype!r}")
    if dtype == "float32":
        return model
    compute = jnp.dtype(dtype)
    scale = (LOSS_SCALE if dtype == "float16" else 1.0) if loss_scale is None else float(loss_scale)
    if not scale > 0:
        raise ValueError(f"loss_scale must be > 0; got {loss_scale!r}")
    layer = model.layer

    def apply(params, state, x, *, key=None, train=False):
        if not train:
            return layer.apply(params, state, x, key=key, train=train)
        if scale != 1.0:
            params, x = _scale_gradient((params, x), 1 / scale)  # (divided out in float32, after the cast back)
        out, new_state = layer.apply(
            _cast(params, compute), _cast(state, compute), _cast(x, compute), key=key, train=train
        )
        out = _cast(out, jnp.float32)
        if scale != 1.0:
            out = _scale_gradient(out, scale)
        return out, jax.tree.map(lambda new, old: new.astype(jnp.result_type(old)), new_state, state)

    return dataclasses.replace(model, layer=Layer(layer.init, apply, layer.name))
