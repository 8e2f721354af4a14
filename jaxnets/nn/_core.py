"""The layer protocol and the combinators that build bigger layers from smaller ones.

A layer is a pair of pure functions plus a name:

    init(key, in_shape) -> (params, state, out_shape)
    apply(params, state, x, *, key=None, train=False) -> (y, new_state)

``in_shape`` and ``out_shape`` are per-example shapes (no batch axis); ``x`` and ``y`` carry a leading batch axis.
``params`` are trained, ``state`` is not (batch-norm statistics); both are pytrees of named dicts.
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Callable, Iterator, Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

Array = jax.Array
Shape = tuple[int, ...]
PyTree = Any
InitFn = Callable[[Array, Any], tuple[PyTree, PyTree, Shape]]  # (in_shape: a Shape; a model's first layer may
# take several inputs: a mapping of their shapes by name)
ApplyFn = Callable[..., tuple[Array, PyTree]]


class Layer(NamedTuple):
    """A pure layer: ``init`` infers shapes and makes parameters, ``apply`` computes the output."""

    init: InitFn
    apply: ApplyFn
    name: str


def stateless(name: str, fn: Callable[[Array], Array], out_shape: Callable[[Shape], Shape] = lambda s: s) -> Layer:
    """Wrap a parameter-free function of the batch (an activation, a reshape) as a layer."""

    def init(key: Array, in_shape: Shape) -> tuple[PyTree, PyTree, Shape]:
        del key
        return {}, {}, tuple(out_shape(tuple(in_shape)))

    def apply(params: PyTree, state: PyTree, x: Array, *, key: Array | None = None, train: bool = False):
        del params, key, train
        return fn(x), state

    return Layer(init, apply, name)


def named(name: str, layer: Layer) -> Layer:
    """Return ``layer`` under another name (the key of its parameters inside ``serial``/``parallel``)."""
    return layer._replace(name=name)


def _unique_names(layers: Sequence[Layer]) -> list[str]:
    """Layer names made unique by suffixing their position where two would collide."""
    names = [layer.name for layer in layers]
    return [n if names.count(n) == 1 else f"{n}{i}" for i, n in enumerate(names)]


# Called as recorder(path, in_shape, out_shape, params, state) after each child of a combinator is initialised, while
# ``recording_init`` is active (``jaxnets.model_summary`` uses it for per-layer output shapes); ``path`` is the tuple of
# parameter keys from the outermost combinator down to the child.
Recorder = Callable[[tuple[str, ...], Shape, Shape, PyTree, PyTree], None]
_RECORDER: contextvars.ContextVar[Recorder | None] = contextvars.ContextVar("jaxnets_init_recorder", default=None)
_PATH: contextvars.ContextVar[tuple[str, ...]] = contextvars.ContextVar("jaxnets_init_path", default=())


@contextlib.contextmanager
def recording_init(recorder: Recorder) -> Iterator[None]:
    """Inside the block, ``serial``/``parallel``/``residual`` init report every child's shapes to ``recorder``.

    Children are reported in post-order (a combinator after its own children). The layer protocol is unchanged:
    this only observes ``init``; run it under ``jax.eval_shape`` to allocate nothing.
    """
    token, path_token = _RECORDER.set(recorder), _PATH.set(())
    try:
        yield
    finally:
        _PATH.reset(path_token)
        _RECORDER.reset(token)


def _init_child(layer: Layer, name: str, key: Array, in_shape: Shape) -> tuple[PyTree, PyTree, Shape]:
    """``layer.init``, reported to the active recorder (if any) under the current path extended by ``name``."""
    recorder = _RECORDER.get()
    if recorder is None:
        return layer.init(key, in_shape)
    path = (*_PATH.get(), name)
    token = _PATH.set(path)
    try:
        params, state, out = layer.init(key, in_shape)
    finally:
        _PATH.reset(token)
    recorder(path, tuple(in_shape), tuple(out), params, state)
    return params, state, out


def _split(key: Array | None, n: int) -> list[Array | None]:
    return [None] * n if key is None else list(jax.random.split(key, n))


def _combine(
    layers: Sequence[Layer],
    name: str,
    merge: tuple[Callable[[list[Shape]], Shape], Callable[[list[Array]], Array]] | None,
) -> Layer:
    """Shared machinery of ``serial`` (no ``merge``: layers chained) and ``parallel`` / ``residual`` (every layer on
    the input, then ``merge`` = (shapes -> shape, outputs -> output))."""
    chain = merge is None
    layers = list(layers)
    names = _unique_names(layers)

    def init(key: Array, in_shape: Shape) -> tuple[PyTree, PyTree, Shape]:
        params, state, shapes = {}, {}, []
        shape = tuple(in_shape)
        for n, layer, k in zip(names, layers, jax.random.split(key, len(layers)), strict=True):
            p, s, out = _init_child(layer, n, k, shape if chain else tuple(in_shape))
            if p:
                params[n] = p
            if s:
                state[n] = s
            shapes.append(tuple(out))
            shape = tuple(out)
        return params, state, shape if merge is None else merge[0](shapes)

    def apply(params: PyTree, state: PyTree, x: Array, *, key: Array | None = None, train: bool = False):
        new_state, outs, h = dict(state), [], x
        for n, layer, k in zip(names, layers, _split(key, len(layers)), strict=True):
            y, s = layer.apply(params.get(n, {}), state.get(n, {}), h if chain else x, key=k, train=train)
            if s:
                new_state[n] = s
            outs.append(y)
            h = y
        return (h if merge is None else merge[1](outs)), new_state

    return Layer(init, apply, name)


def serial(*layers: Layer, name: str = "serial") -> Layer:
    """Stack layers in sequence; parameters are a dict keyed by each layer's (unique) name."""
    return _combine(layers, name, merge=None)


def parallel(*branches: Layer, name: str = "parallel") -> Layer:
    """Run branches on the same input and concatenate their outputs along the last (channel) axis."""

    def merge(shapes: list[Shape]) -> Shape:
        spatial = {s[:-1] for s in shapes}
        if len(spatial) != 1:
            raise ValueError(f"parallel '{name}': branches must agree on all but the channel axis; got shapes {shapes}")
        return (*shapes[0][:-1], sum(s[-1] for s in shapes))

    return _combine(branches, name, merge=(merge, lambda ys: jnp.concatenate(ys, axis=-1)))


def residual(body: Layer, shortcut: Layer | None = None, name: str = "residual") -> Layer:
    """``body(x) + shortcut(x)`` (identity shortcut by default), the building block of ResNet."""
    shortcut = shortcut if shortcut is not None else stateless("identity", lambda x: x)

    def merge(shapes: list[Shape]) -> Shape:
        if len(set(shapes)) != 1:
            raise ValueError(f"residual '{name}': body and shortcut must give the same shape; got {shapes}")
        return shapes[0]

    return _combine([named("body", body), named("shortcut", shortcut)], name, merge=(merge, lambda ys: ys[0] + ys[1]))
