"""N-dimensional convolution (1D, 2D, 3D) behind one function, with selectable strategies.

Layout is channels-last: inputs ``(batch, *spatial, channels)``, kernels ``(*window, in_channels // groups,
features)``. Strategies compute the same function (equal up to float rounding, values and gradients):

- ``"xla"``: ``lax.conv_general_dilated``, XLA's native convolution (best on GPU/TPU).
- ``"im2col"``: the receptive fields gathered with strided slices of the input in channels-first layout, contracted
  with the kernel in one matrix product; differentiated by autodiff (matrix products and col2im).
- ``"auto"``: ``"xla"`` on accelerators; on the CPU a per-shape mix (``cpu_plan``) of the fastest forward, input
  gradient (col2im accumulated in place) and kernel gradient, joined by a custom VJP (so reverse mode only:
  use ``"xla"`` or ``"im2col"`` for forward-mode ``jax.jvp``).

A layer's strategy is fixed when the layer is built: its ``strategy`` argument, else the one set by the innermost
``with conv_strategy(...)`` block around the building code (a whole model: ``with nn.conv_strategy("xla"):
model = build(...)``), else ``"auto"``. Tracing and running the model later never consult the context.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import itertools
from collections.abc import Iterator, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from jaxnets.nn import initializers as inits
from jaxnets.nn._core import Layer, Shape

Array = jax.Array
Padding = str | int | Sequence[int] | Sequence[tuple[int, int]]
STRATEGIES = ("auto", "xla", "im2col")
_STRATEGY: contextvars.ContextVar[str | None] = contextvars.ContextVar("jaxnets_conv_strategy", default=None)


def _check_strategy(strategy: str) -> str:
    if strategy not in STRATEGIES:
        raise ValueError(f"unknown convolution strategy {strategy!r}; choose one of {STRATEGIES}")
    return strategy


@contextlib.contextmanager
def conv_strategy(strategy: str) -> Iterator[None]:
    """Inside the block, convolution layers built without an explicit ``strategy`` use this one (see the module
    docstring); blocks nest, the innermost wins."""
    token = _STRATEGY.set(_check_strategy(strategy))
    try:
        yield
    finally:
        _STRATEGY.reset(token)


def current_conv_strategy(default: str = "auto") -> str:
    """The strategy a convolution layer built here would use: the innermost ``conv_strategy`` block's, else
    ``default``."""
    chosen = _STRATEGY.get()
    return _check_strategy(default if chosen is None else chosen)


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


def padding_pairs(
    padding: Padding,
    window: Sequence[int],
    stride: Sequence[int],
    in_spatial: Sequence[int],
    dilation: Sequence[int] | None = None,
) -> tuple[tuple[int, int], ...]:
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
    pads: list[int | Sequence[int]] = list(padding)
    ints = [p for p in pads if isinstance(p, int)]
    if len(pads) == n and len(ints) == n:
        return tuple((p, p) for p in ints)
    lows_highs = [tuple(p) for p in pads if not isinstance(p, int) and len(p) == 2]
    if len(pads) == n and len(lows_highs) == n:
        return tuple((int(lo), int(hi)) for lo, hi in lows_highs)
    raise ValueError(f"padding must be 'SAME', 'VALID', an int or {n} ints/(low, high) pairs; got {padding!r}")


def _dimension_numbers(nd: int) -> tuple[str, str, str]:
    sp = "DHW"[-nd:] if nd <= 3 else "".join(chr(ord("a") + i) for i in range(nd))
    return f"N{sp}C", f"{sp}IO", f"N{sp}C"


def window_slices(
    x: Array,
    window: Sequence[int],
    stride: Sequence[int],
    dilation: Sequence[int],
    out_spatial: Sequence[int],
    first_axis: int = 1,
) -> list[Array]:
    """One strided slice of ``x`` per window offset (row-major): the values under that tap of every output window.

    The spatial axes of ``x`` (already padded) start at ``first_axis``; each slice has ``out_spatial`` there.
    """
    slices = []
    for offset in itertools.product(*(range(k) for k in window)):
        start = [0] * x.ndim
        limit, strides = list(x.shape), [1] * x.ndim
        for i, (o, d, n, s) in enumerate(zip(offset, dilation, out_spatial, stride, strict=True)):
            start[first_axis + i] = o * d
            limit[first_axis + i] = o * d + (n - 1) * s + 1
            strides[first_axis + i] = s
        slices.append(lax.slice(x, start, limit, strides))
    return slices


def _conv_xla(x: Array, w: Array, stride, padding, groups: int, dilation) -> Array:
    return lax.conv_general_dilated(
        x,
        w,
        stride,
        padding,
        rhs_dilation=dilation,
        dimension_numbers=_dimension_numbers(x.ndim - 2),
        feature_group_count=groups,
    )


def _conv_im2col(x: Array, w: Array, stride, padding, groups: int, dilation) -> Array:
    """Channels-first im2col: patches ``(window * channels, batch * out)`` from contiguous strided slices of the
    input transposed to ``(channels, batch, *spatial)``, then one (grouped) matrix product ``w^T @ patches``.

    Its autodiff is matrix products too: the weight gradient ``patches @ dy`` and, for the input, ``w @ dy^T``
    scattered back by the transposes of the slices (col2im: a sum of padded arrays that XLA fuses into one loop).
    """
    nd = x.ndim - 2
    window, features = w.shape[:nd], w.shape[-1]
    xt = jnp.moveaxis(x, -1, 0)  # (C, N, *spatial): every slice copies contiguous rows
    xt = lax.pad(xt, jnp.zeros((), x.dtype), [(0, 0, 0), (0, 0, 0), *((lo, hi, 0) for lo, hi in padding)])
    out = [(n - ((k - 1) * d + 1)) // s + 1 for n, k, d, s in zip(xt.shape[2:], window, dilation, stride, strict=True)]
    k, cin_g = int(np.prod(window)), w.shape[-2]
    cols = jnp.stack(window_slices(xt, window, stride, dilation, out, first_axis=2))  # (K, C, N, *out)
    if groups == 1:  # a plain matrix product: (K*C, F)^T @ (K*C, N*out)
        yt = lax.dot_general(w.reshape(k * cin_g, features), cols.reshape(k * cin_g, -1), (((0,), (0,)), ((), ())))
    else:  # one product per group: (groups, F/groups, N*out)
        cols = cols.reshape(k, groups, cin_g, -1)
        wg = w.reshape(k, cin_g, groups, features // groups)
        yt = lax.dot_general(wg, cols, (((0, 1), (0, 2)), ((2,), (1,))))
    return jnp.moveaxis(yt.reshape(features, x.shape[0], *out), 0, -1)


_IMPLS = {"xla": _conv_xla, "im2col": _conv_im2col}


def _col2im_input_grad(dy: Array, w: Array, x_shape, stride, padding, dilation) -> Array:
    """Input gradient of an (ungrouped) convolution: ``w @ dy^T`` scattered back by col2im, accumulated in place
    (XLA would otherwise fuse a sum of K padded arrays into every consumer of the gradient and recompute it there)."""
    nd = len(x_shape) - 2
    window, features, cin = w.shape[:nd], w.shape[-1], w.shape[-2]
    out = dy.shape[1:-1]
    dyt = jnp.moveaxis(dy, -1, 0).reshape(features, -1)
    dcols = lax.dot_general(w.reshape(-1, features), dyt, (((1,), (0,)), ((), ())))  # (K*C, N*out)
    dcols = dcols.reshape(-1, cin, x_shape[0], *out)
    padded = [n + lo + hi for n, (lo, hi) in zip(x_shape[1:-1], padding, strict=True)]
    dxt = jnp.zeros((cin, x_shape[0], *padded), dy.dtype)
    for k, offset in enumerate(itertools.product(*(range(k) for k in window))):
        if all(s == 1 for s in stride):  # accumulate in place: XLA cannot fuse (and so recompute) the sum
            start = (0, 0, *(o * d for o, d in zip(offset, dilation, strict=True)))
            region = lax.dynamic_slice(dxt, start, dcols[k].shape)
            dxt = lax.dynamic_update_slice(dxt, region + dcols[k], start)
            continue
        cfg = [(0, 0, 0), (0, 0, 0)]
        for o, d, n, m, s in zip(offset, dilation, padded, out, stride, strict=True):
            cfg.append((o * d, n - o * d - (m - 1) * s - 1, s - 1))
        dxt = dxt + lax.pad(dcols[k], jnp.zeros((), dy.dtype), cfg)
    dxt = lax.pad(dxt, jnp.zeros((), dy.dtype), [(0, 0, 0), (0, 0, 0), *((-lo, -hi, 0) for lo, hi in padding)])
    return jnp.moveaxis(dxt, 0, -1)


@functools.partial(jax.custom_vjp, nondiff_argnums=(2, 3, 4, 5, 6))
def _conv_mixed(x: Array, w: Array, stride, padding, groups: int, dilation, plan: tuple[str, str, str]) -> Array:
    """The convolution computed by ``plan[0]``, its input gradient by ``plan[1]`` and its kernel gradient by
    ``plan[2]`` ('im2col' input gradients are col2im), so that each part takes its fastest route."""
    return _IMPLS[plan[0]](x, w, stride, padding, groups, dilation)


def _conv_mixed_fwd(x, w, stride, padding, groups, dilation, plan):
    return _conv_mixed(x, w, stride, padding, groups, dilation, plan), (x, w)


def _conv_mixed_bwd(stride, padding, groups, dilation, plan, res, dy):
    x, w = res
    if plan[1] == "im2col" and groups == 1:
        dx = _col2im_input_grad(dy, w, x.shape, stride, padding, dilation)
    else:
        dx = jax.vjp(lambda x: _IMPLS[plan[1]](x, w, stride, padding, groups, dilation), x)[1](dy)[0]
    dw = jax.vjp(lambda w: _IMPLS[plan[2]](x, w, stride, padding, groups, dilation), w)[1](dy)[0]
    return dx, dw


_conv_mixed.defvjp(_conv_mixed_fwd, _conv_mixed_bwd)


def cpu_plan(w_shape: Sequence[int], groups: int = 1) -> tuple[str, str, str]:
    """'auto''s CPU choice of (forward, input gradient, kernel gradient) strategies for a convolution's kernel shape.

    Measured on x86 with XLA:CPU (bench/README.md): the native convolution is slow forward for few input channels
    and few features (LeNet-5's C1: im2col is ~3x faster) and slow for every input gradient (a transposed
    convolution: col2im is 2-10x faster), while its kernel gradient is the fastest. Grouped convolutions use XLA.
    """
    if groups != 1:
        return ("xla", "xla", "xla")
    cin, features = w_shape[-2], w_shape[-1]
    return ("im2col" if cin <= 4 and features <= 32 else "xla", "im2col", "xla")


def conv_general(
    x: Array,
    w: Array,
    stride: Sequence[int],
    padding: Sequence[tuple[int, int]],
    groups: int = 1,
    dilation: Sequence[int] | None = None,
    strategy: str = "auto",
) -> Array:
    """Channels-last N-D convolution of ``x`` with kernel ``w`` by the chosen strategy (all give equal results)."""
    nd = x.ndim - 2
    stride, dilation = tuple(stride), tuple(dilation or (1,) * nd)
    padding = tuple((int(lo), int(hi)) for lo, hi in padding)
    if strategy == "auto":
        if jax.default_backend() != "cpu":
            return _conv_xla(x, w, stride, padding, groups, dilation)
        return _conv_mixed(x, w, stride, padding, groups, dilation, cpu_plan(w.shape, groups))
    return _IMPLS[_check_strategy(strategy)](x, w, stride, padding, groups, dilation)


def conv(
    features: int,
    kernel_size: int | Sequence[int],
    *,
    ndim: int | None = None,
    stride: int | Sequence[int] = 1,
    padding: Padding = "VALID",
    groups: int = 1,
    dilation: int | Sequence[int] = 1,
    connections: np.ndarray | None = None,
    use_bias: bool = True,
    w_init: inits.Initializer | None = None,
    b_init: inits.Initializer = inits.zeros,
    strategy: str | None = None,
    name: str = "conv",
) -> Layer:
    """Convolution layer over ``ndim`` spatial axes (taken from ``kernel_size`` if it is a sequence).

    ``groups`` splits input and output channels into that many independent groups. ``connections`` is an optional
    boolean ``(in_channels, features)`` table (LeNet-5's C3): only connected pairs get weights, stored compactly as
    ``w: (*window, n_connections)`` so that the parameter count is the published one. ``strategy`` (see
    ``STRATEGIES``) defaults to the enclosing ``conv_strategy`` block's, else 'auto'.
    Params: ``{'w': (*window, in_channels // groups, features), 'b': (features,)}``.
    """
    if ndim is None:
        ndim = 2 if isinstance(kernel_size, int) else len(kernel_size)
    window = _tuple(kernel_size, ndim, "kernel_size")
    strides = _tuple(stride, ndim, "stride")
    dilations = _tuple(dilation, ndim, "dilation")
    strategy = current_conv_strategy() if strategy is None else _check_strategy(strategy)
    if features < 1:
        raise ValueError(f"{name}: features (output channels) must be >= 1; got {features}")
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
            raise ValueError(
                f"{name}: a {ndim}D convolution expects per-example input (*{ndim} spatial, channels); "
                f"got shape {tuple(in_shape)}"
            )
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
        out = tuple(
            conv_output_size(n + lo + hi, (k - 1) * d + 1, 0, s)
            for n, (lo, hi), k, d, s in zip(in_shape[:-1], pads, window, dilations, strides, strict=True)
        )
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
