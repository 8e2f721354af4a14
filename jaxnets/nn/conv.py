"""N-dimensional convolution (1D, 2D, 3D) behind one function, with selectable strategies.

Layout is channels-last: inputs ``(batch, *spatial, channels)``, kernels ``(*window, in_channels // groups,
features)``. Strategies compute the same function:

- ``"xla"``: ``lax.conv_general_dilated``, XLA's native convolution (best on GPU/TPU).
- ``"im2col"``: gather the receptive fields with strided slices and contract them with one matrix product.
- ``"auto"``: ``"xla"`` on accelerators, ``"im2col"`` on the CPU, whose native convolutions are slow for small
  channel counts.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from jaxnets.nn import initializers as inits
from jaxnets.nn.core import Layer, Shape

Array = jax.Array
Padding = str | int | Sequence[int] | Sequence[tuple[int, int]]
STRATEGIES = ("auto", "xla", "im2col")


def conv_output_size(n: int, f: int, p: int = 0, s: int = 1) -> int:
    """Output length of a convolution or pooling window: floor((n + 2p - f) / s) + 1."""
    if n < 1 or f < 1 or s < 1 or p < 0:
        raise ValueError(f"need input n >= 1, window f >= 1, stride s >= 1, padding p >= 0; got {n=}, {f=}, {s=}, {p=}")
    if f > n + 2 * p:
        raise ValueError(f"window {f} is larger than the padded input {n} + 2*{p}")
    return (n + 2 * p - f) // s + 1


def _tuple(v: int | Sequence[int], n: int, what: str) -> tuple[int, ...]:
    t = (v,) * n if isinstance(v, int) else tuple(v)
    if len(t) != n or any(not isinstance(i, (int, np.integer)) or i < 1 for i in t):
        raise ValueError(f"{what} must be a positive int or a sequence of {n} of them; got {v!r}")
    return tuple(int(i) for i in t)


def padding_pairs(padding: Padding, window: Sequence[int], stride: Sequence[int],
                  in_spatial: Sequence[int], dilation: Sequence[int] | None = None) -> tuple[tuple[int, int], ...]:
    """Explicit (low, high) padding per spatial axis from 'SAME', 'VALID', an int or per-axis ints/pairs."""
    n = len(window)
    dilation = dilation or (1,) * n
    eff = [(k - 1) * d + 1 for k, d in zip(window, dilation, strict=True)]
    if isinstance(padding, str):
        mode = padding.upper()
        if mode == "VALID":
            return ((0, 0),) * n
        if mode == "SAME":
            pairs = []
            for size, k, s in zip(in_spatial, eff, stride, strict=True):
                out = -(-size // s)
                total = max((out - 1) * s + k - size, 0)
                pairs.append((total // 2, total - total // 2))
            return tuple(pairs)
        raise ValueError(f"padding must be 'SAME', 'VALID', an int or per-axis values; got {padding!r}")
    if isinstance(padding, int):
        return ((padding, padding),) * n
    pads = list(padding)
    if len(pads) == n and all(isinstance(p, int) for p in pads):
        return tuple((p, p) for p in pads)
    if len(pads) == n and all(len(p) == 2 for p in pads):
        return tuple((int(lo), int(hi)) for lo, hi in pads)
    raise ValueError(f"padding must be 'SAME', 'VALID', an int or {n} ints/(low, high) pairs; got {padding!r}")


def _dimension_numbers(nd: int) -> tuple[str, str, str]:
    sp = "DHW"[-nd:] if nd <= 3 else "".join(chr(ord("a") + i) for i in range(nd))
    return f"N{sp}C", f"{sp}IO", f"N{sp}C"


def _patches(x: Array, window: Sequence[int], stride: Sequence[int], dilation: Sequence[int],
             out_spatial: Sequence[int]) -> Array:
    """Receptive fields of ``x`` (already padded): ``(batch, *out_spatial, prod(window), channels)``."""
    slices = []
    for offset in itertools.product(*(range(k) for k in window)):
        start = (0, *(o * d for o, d in zip(offset, dilation, strict=True)), 0)
        limit = (x.shape[0], *(st + (n - 1) * s + 1 for st, n, s in zip(start[1:-1], out_spatial, stride,
                                                                          strict=True)), x.shape[-1])
        slices.append(lax.slice(x, start, limit, (1, *stride, 1)))
    return jnp.stack(slices, axis=-2)


def conv_general(x: Array, w: Array, stride: Sequence[int], padding: Sequence[tuple[int, int]], groups: int = 1,
                 dilation: Sequence[int] | None = None, strategy: str = "auto") -> Array:
    """Channels-last N-D convolution of ``x`` with kernel ``w`` by the chosen strategy (all give equal results)."""
    nd = x.ndim - 2
    dilation = tuple(dilation or (1,) * nd)
    if strategy == "auto":
        strategy = "im2col" if jax.default_backend() == "cpu" else "xla"
    if strategy == "xla":
        return lax.conv_general_dilated(x, w, tuple(stride), tuple(padding), rhs_dilation=dilation,
                                        dimension_numbers=_dimension_numbers(nd), feature_group_count=groups)
    if strategy != "im2col":
        raise ValueError(f"unknown convolution strategy {strategy!r}; choose one of {STRATEGIES}")
    window = w.shape[:nd]
    xp = jnp.pad(x, ((0, 0), *padding, (0, 0)))
    out_spatial = [(n - ((k - 1) * d + 1)) // s + 1
                   for n, k, d, s in zip(xp.shape[1:-1], window, dilation, stride, strict=True)]
    cols = _patches(xp, window, stride, dilation, out_spatial)  # (N, *out, K, C)
    k, cin_g, features = int(np.prod(window)), w.shape[-2], w.shape[-1]
    if groups == 1:
        return cols.reshape(*cols.shape[:-2], k * cin_g) @ w.reshape(k * cin_g, features)
    cols = cols.reshape(*cols.shape[:-1], groups, cin_g)
    wg = w.reshape(k, cin_g, groups, features // groups)
    y = jnp.einsum("...kgc,kcgf->...gf", cols, wg)
    return y.reshape(*y.shape[:-2], features)


def conv(features: int, kernel_size: int | Sequence[int], *, ndim: int | None = None, stride: int | Sequence[int] = 1,
         padding: Padding = "VALID", groups: int = 1, dilation: int | Sequence[int] = 1,
         connections: np.ndarray | None = None, use_bias: bool = True, w_init: inits.Initializer | None = None,
         b_init: inits.Initializer = inits.zeros, strategy: str = "auto", name: str = "conv") -> Layer:
    """Convolution layer over ``ndim`` spatial axes (taken from ``kernel_size`` if it is a sequence).

    ``groups`` splits input and output channels into that many independent groups. ``connections`` is an optional
    boolean ``(in_channels, features)`` table (LeNet-5's C3): only connected pairs get weights, stored compactly as
    ``w: (*window, n_connections)`` so that the parameter count is the published one.
    Params: ``{'w': (*window, in_channels // groups, features), 'b': (features,)}``.
    """
    if ndim is None:
        ndim = 2 if isinstance(kernel_size, int) else len(kernel_size)
    window = _tuple(kernel_size, ndim, "kernel_size")
    strides = _tuple(stride, ndim, "stride")
    dilations = _tuple(dilation, ndim, "dilation")
    if strategy not in STRATEGIES:
        raise ValueError(f"unknown convolution strategy {strategy!r}; choose one of {STRATEGIES}")
    padding_pairs(padding, window, strides, window, dilations)  # reject a malformed padding now, not at init
    if groups < 1 or features % groups:
        raise ValueError(f"features ({features}) must be a positive multiple of groups ({groups})")
    w_init = w_init or inits.lecun_normal()
    rows = cols = None
    if connections is not None:
        if groups != 1:
            raise ValueError("a connection table and channel groups cannot be combined")
        table = np.asarray(connections, bool)
        if table.ndim != 2 or table.shape[1] != features:
            raise ValueError(f"connections must be a boolean (in_channels, {features}) table; got {table.shape}")
        rows, cols = np.nonzero(table)

    def init(key: Array, in_shape: Shape):
        if len(in_shape) != ndim + 1:
            raise ValueError(f"{name}: a {ndim}D convolution expects per-example input (*{ndim} spatial, channels); "
                             f"got shape {tuple(in_shape)}")
        cin = in_shape[-1]
        if cin % groups:
            raise ValueError(f"{name}: input channels ({cin}) must be a multiple of groups ({groups})")
        if connections is not None and len(connections) != cin:
            raise ValueError(f"{name}: connection table has {len(connections)} rows for {cin} input channels")
        kw, kb = jax.random.split(key)
        wshape = (*window, cin // groups, features) if rows is None else (*window, len(rows))
        params = {"w": w_init(kw, wshape)}
        if use_bias:
            params["b"] = b_init(kb, (features,))
        pads = padding_pairs(padding, window, strides, in_shape[:-1], dilations)
        out = tuple(conv_output_size(n + lo + hi, (k - 1) * d + 1, 0, s)
                    for n, (lo, hi), k, d, s in zip(in_shape[:-1], pads, window, dilations, strides, strict=True))
        return params, {}, (*out, features)

    def apply(params, state, x, *, key=None, train=False):
        del key, train
        w = params["w"]
        if rows is not None:
            w = jnp.zeros((*window, x.shape[-1], features), w.dtype).at[..., rows, cols].set(w)
        pads = padding_pairs(padding, window, strides, x.shape[1:-1], dilations)
        y = conv_general(x, w, strides, pads, groups, dilations, strategy)
        return (y + params["b"] if use_bias else y), state

    return Layer(init, apply, name)


def conv1d(features: int, kernel_size: int, **kwargs) -> Layer:
    """1D convolution over (batch, length, channels)."""
    return conv(features, kernel_size, ndim=1, **kwargs)


def conv2d(features: int, kernel_size: int | Sequence[int], **kwargs) -> Layer:
    """2D convolution over (batch, height, width, channels)."""
    return conv(features, kernel_size, ndim=2, **kwargs)


def conv3d(features: int, kernel_size: int | Sequence[int], **kwargs) -> Layer:
    """3D convolution over (batch, depth, height, width, channels)."""
    return conv(features, kernel_size, ndim=3, **kwargs)
