"""Pooling (subsampling) layers: max, average, and LeNet-5's trainable subsampling."""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from jaxnets.nn._conv import Padding, _tuple, conv_output_size, padding_pairs
from jaxnets.nn._core import Layer, Shape

Array = jax.Array


def _pool(
    kind: str,
    window: int | Sequence[int],
    stride: int | Sequence[int] | None,
    padding: Padding,
    name: str,
    reduce: Callable[[Array, Sequence[int], Sequence[int], Sequence[tuple[int, int]]], Array],
    params_fn: Callable[[int], dict] | None = None,
    post: Callable[[dict, Array], Array] | None = None,
) -> Layer:
    """Shared shape logic of the pooling layers; ``reduce`` pools a channels-last batch."""
    if isinstance(padding, str):
        padding_pairs(padding, (1,), (1,), (1,))  # reject an unknown padding mode now rather than at init
    for v, what in ((window, "window"), (stride, "stride")):
        if isinstance(v, int):
            _tuple(v, 1, f"{kind} {what}")

    def dims(in_shape: Shape):
        nd = len(in_shape) - 1
        win = _tuple(window, nd, f"{kind} window")
        strides = _tuple(stride if stride is not None else window, nd, f"{kind} stride")
        return win, strides, padding_pairs(padding, win, strides, in_shape[:-1])

    def init(key: Array, in_shape: Shape):
        del key
        win, strides, pads = dims(tuple(in_shape))
        out = tuple(
            conv_output_size(n + lo + hi, k, 0, s)
            for n, (lo, hi), k, s in zip(in_shape[:-1], pads, win, strides, strict=True)
        )
        params = params_fn(in_shape[-1]) if params_fn else {}
        return params, {}, (*out, in_shape[-1])

    def apply(params, state, x, *, key=None, train=False):
        del key, train
        y = reduce(x, *dims(x.shape[1:]))
        return (post(params, y) if post else y), state

    return Layer(init, apply, name)


def _blocks(x: Array, init: float, win, pads) -> tuple[Array, tuple[int, ...]]:
    """Non-overlapping windows as axes: ``(N, o1, k1, o2, k2, ..., C)`` and the window axes' indices."""
    x = lax.pad(x, jnp.asarray(init, x.dtype), [(0, 0, 0), *((lo, hi, 0) for lo, hi in pads), (0, 0, 0)])
    out = [n // k for n, k in zip(x.shape[1:-1], win, strict=True)]
    x = x[(slice(None), *(slice(0, o * k) for o, k in zip(out, win, strict=True)))]  # floor: drop the ragged edge
    shape = [x.shape[0]]
    for o, k in zip(out, win, strict=True):
        shape += [o, k]
    return x.reshape(*shape, x.shape[-1]), tuple(range(2, 2 * len(win) + 1, 2))


@functools.partial(jax.custom_jvp, nondiff_argnums=(1,))
def _block_max(xb: Array, axes: tuple[int, ...]) -> Array:
    """Max over the window axes; its derivative follows the first maximum of a window (row-major) on ties, exactly
    like reduce_window's gradient (select_and_scatter), but as one elementwise select instead of a scatter."""
    return jnp.max(xb, axes)


@_block_max.defjvp
def _block_max_jvp(axes, primals, tangents):
    (xb,), (tb,) = primals, tangents
    y = jnp.max(xb, axes, keepdims=True)
    k = math.prod(xb.shape[a] for a in axes)
    order = np.arange(k).reshape([xb.shape[a] if a in axes else 1 for a in range(xb.ndim)])
    first = jnp.min(jnp.where(xb == y, order, k), axes, keepdims=True)
    return jnp.squeeze(y, axes), jnp.sum(jnp.where(order == first, tb, 0), axes)


def _window_reduce(x: Array, init: float, kind: str, win, strides, pads) -> Array:
    """Max or sum over every window of a channels-last batch (padding with ``init``).

    Non-overlapping windows (stride == window, the classic 2x2 pooling) are reshaped into axes and reduced, with a
    gradient that is one fused select or broadcast; on the CPU that is several times faster than reduce_window and
    its select_and_scatter gradient. Other windows use reduce_window.
    """
    if tuple(win) == tuple(strides):
        xb, axes = _blocks(x, init, win, pads)
        return _block_max(xb, axes) if kind == "max" else jnp.sum(xb, axes)
    op = lax.max if kind == "max" else lax.add
    return lax.reduce_window(x, init, op, (1, *win, 1), (1, *strides, 1), ((0, 0), *pads, (0, 0)))


def _max(x, win, strides, pads):
    return _window_reduce(x, -jnp.inf, "max", win, strides, pads)


def _avg(x, win, strides, pads):
    """Mean over each window; padded positions are not counted (like PyTorch's count_include_pad=False)."""
    total = _window_reduce(x, 0.0, "sum", win, strides, pads)
    if all(p == (0, 0) for p in pads):
        return total / math.prod(win)
    count = _window_reduce(jnp.ones((1, *x.shape[1:-1], 1), x.dtype), 0.0, "sum", win, strides, pads)
    return total / count


def max_pool(
    window: int | Sequence[int] = 2,
    stride: int | Sequence[int] | None = None,
    padding: Padding = "VALID",
    name: str = "max_pool",
) -> Layer:
    """Maximum over each window (stride defaults to the window: non-overlapping)."""
    return _pool("max_pool", window, stride, padding, name, _max)


def avg_pool(
    window: int | Sequence[int] = 2,
    stride: int | Sequence[int] | None = None,
    padding: Padding = "VALID",
    name: str = "avg_pool",
) -> Layer:
    """Mean over each window (stride defaults to the window: non-overlapping)."""
    return _pool("avg_pool", window, stride, padding, name, _avg)


def subsample(window: int | Sequence[int] = 2, name: str = "subsample") -> Layer:
    """LeNet-5's trainable subsampling: the window average times a learned per-channel coefficient, plus a bias.

    Params ``{'coef': (channels,), 'b': (channels,)}``: 2 per feature map (S2 has 12, S4 has 32).
    """
    return _pool(
        "subsample",
        window,
        None,
        "VALID",
        name,
        _avg,
        params_fn=lambda c: {"coef": jnp.ones((c,)), "b": jnp.zeros((c,))},
        post=lambda p, y: y * p["coef"] + p["b"],
    )


def _adaptive_matrix(n: int, out: int) -> np.ndarray:
    """(out, n) averaging matrix of adaptive pooling: row i averages inputs floor(i n / out) .. ceil((i+1) n / out)."""
    m = np.zeros((out, n), np.float32)
    for i in range(out):
        lo, hi = (i * n) // out, -(-((i + 1) * n) // out)
        m[i, lo:hi] = 1.0 / (hi - lo)
    return m


def adaptive_avg_pool(output_size: int | Sequence[int], name: str = "adaptive_avg_pool") -> Layer:
    """Average pooling to a fixed spatial size whatever the input's (PyTorch's ``AdaptiveAvgPool``): output position
    i averages input positions floor(i n / out) to ceil((i + 1) n / out) on each spatial axis, so an input smaller
    than the output is repeated and an input equal to it passes through unchanged."""

    def init(key: Array, in_shape: Shape):
        del key
        out = _tuple(output_size, len(in_shape) - 1, "adaptive_avg_pool output_size")
        return {}, {}, (*out, in_shape[-1])

    def apply(params, state, x, *, key=None, train=False):
        del key, train
        out = _tuple(output_size, x.ndim - 2, "adaptive_avg_pool output_size")
        for axis, (n, o) in enumerate(zip(x.shape[1:-1], out, strict=True), start=1):
            if n != o:
                x = jnp.moveaxis(
                    jnp.tensordot(jnp.asarray(_adaptive_matrix(n, o), x.dtype), x, ((1,), (axis,))), 0, axis
                )
        return x, state

    return Layer(init, apply, name)


def global_avg_pool(name: str = "global_avg_pool") -> Layer:
    """Mean over all spatial axes: ``(batch, *spatial, channels) -> (batch, channels)``."""

    def init(key: Array, in_shape: Shape):
        del key
        return {}, {}, (in_shape[-1],)

    def apply(params, state, x, *, key=None, train=False):
        del key, train
        return jnp.mean(x, axis=tuple(range(1, x.ndim - 1))), state

    return Layer(init, apply, name)
