"""Transposed convolution (the adjoint of a strided convolution) and the gradient-reversal layer.

``conv_transpose`` maps a ``(batch, *spatial, in_features)`` input to ``(batch, *bigger, out_features)``: it is the
input-gradient of the convolution with kernel ``swapaxes(w, -1, -2)`` and the same stride and padding, i.e. what
PyTorch's ``ConvTranspose2d`` and Keras's ``Conv2DTranspose`` compute. ``padding`` is the forward convolution's: an
int ``p`` (output ``(n - 1) * stride - 2p + k + output_padding``), ``'SAME'`` (output ``n * stride``) or ``'VALID'``
(output ``(n - 1) * stride + k``). Its gradients are written by hand (reverse mode only: no ``jax.jvp`` through it).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

import jax
import jax.numpy as jnp
from jax import lax

from jaxnets.nn import initializers as inits
from jaxnets.nn._conv import _dimension_numbers, _tuple
from jaxnets.nn._core import Layer, Shape, stateless

Array = jax.Array


def _pads(n: int, k: int, s: int, padding: str | int, output_padding: int) -> tuple[int, int]:
    """(low, high) padding of the stride-dilated input that gives the adjoint's output size along one axis."""
    if isinstance(padding, str):
        mode = padding.upper()
        if mode not in ("SAME", "VALID") or output_padding:
            raise ValueError(
                f"conv_transpose padding must be 'SAME', 'VALID' or an int in [0, kernel_size - 1] "
                f"(output_padding only with an int); got {padding!r}, output_padding={output_padding}"
            )
        total = max(k - s, 0) if mode == "SAME" else 0
        out = n * s if mode == "SAME" else (n - 1) * s + k
        lo = total // 2
    else:
        if not 0 <= padding <= k - 1 or not 0 <= output_padding < s:
            raise ValueError(
                f"conv_transpose padding must be an int in [0, kernel_size - 1 = {k - 1}] and "
                f"output_padding in [0, stride - 1 = {s - 1}]; got {padding}, {output_padding}"
            )
        lo = padding
        out = (n - 1) * s - 2 * padding + k + output_padding
    # the dilated input has (n - 1) s + 1 positions; a VALID conv with a k-window over it padded (k-1-lo, hi) has
    # (n - 1) s + 1 + (k - 1 - lo) + hi - k + 1 outputs: solve for hi
    hi = out - ((n - 1) * s + 1) - (k - 1 - lo) + k - 1
    return k - 1 - lo, hi


def conv_transpose_general(
    x: Array,
    w: Array,
    stride: Sequence[int],
    padding: str | int | Sequence[int] = "SAME",
    output_padding: int | Sequence[int] = 0,
) -> Array:
    """Channels-last N-D transposed convolution of ``x`` with ``w`` of shape ``(*window, in_features,
    out_features)``: the adjoint of ``conv(., swapaxes(w, -1, -2), stride, padding)``."""
    nd = x.ndim - 2
    window = w.shape[:nd]
    pads = [padding] * nd if isinstance(padding, str | int) else list(padding)
    extra = [output_padding] * nd if isinstance(output_padding, int) else list(output_padding)
    if len(pads) != nd or len(extra) != nd or len(stride) != nd:
        raise ValueError(
            f"conv_transpose over {nd} spatial axes needs {nd} strides, paddings and output paddings; "
            f"got {stride!r}, {padding!r}, {output_padding!r}"
        )
    pairs = [_pads(n, k, s, p, e) for n, k, s, p, e in zip(x.shape[1:-1], window, stride, pads, extra, strict=True)]
    return _transposed(x, w, tuple(stride), tuple(pairs))


@functools.partial(jax.custom_vjp, nondiff_argnums=(2, 3))
def _transposed(x: Array, w: Array, stride: tuple[int, ...], pairs: tuple[tuple[int, int], ...]) -> Array:
    """The transposed convolution as a stride-dilated one. Its gradients are written by hand: autodiff's kernel
    gradient of an input-dilated convolution is itself dilated and runs ~10x slower on XLA's CPU backend."""
    nd = x.ndim - 2
    flipped = jnp.flip(w, axis=tuple(range(nd)))
    return lax.conv_general_dilated(
        x, flipped, (1,) * nd, pairs, lhs_dilation=stride, dimension_numbers=_dimension_numbers(nd)
    )


def _strided(g: Array, w: Array, stride: tuple[int, ...], pairs: tuple[tuple[int, int], ...]) -> Array:
    """The strided convolution (kernel ``swapaxes(w, -1, -2)``) whose adjoint is ``_transposed(., w)``."""
    window = w.shape[: g.ndim - 2]
    pads = [(k - 1 - lo, k - 1 - hi) for k, (lo, hi) in zip(window, pairs, strict=True)]
    return lax.conv_general_dilated(
        g, jnp.swapaxes(w, -1, -2), stride, pads, dimension_numbers=_dimension_numbers(g.ndim - 2)
    )


def _transposed_fwd(x, w, stride, pairs):
    return _transposed(x, w, stride, pairs), (x, w)


def _transposed_bwd(stride, pairs, residuals, g):
    # y = A(w) x with A(w) the adjoint of the strided convolution S(w): <g, A(w) x> = <S(w) g, x>, bilinear in w
    x, w = residuals
    grad_x, kernel_vjp = jax.vjp(lambda w_: _strided(g, w_, stride, pairs), w)
    return grad_x, kernel_vjp(x)[0]


_transposed.defvjp(_transposed_fwd, _transposed_bwd)


def conv_transpose(
    features: int,
    kernel_size: int | Sequence[int],
    *,
    ndim: int | None = None,
    stride: int | Sequence[int] = 1,
    padding: str | int | Sequence[int] = "SAME",
    output_padding: int | Sequence[int] = 0,
    use_bias: bool = True,
    w_init: inits.Initializer | None = None,
    b_init: inits.Initializer = inits.zeros,
    name: str = "conv_transpose",
) -> Layer:
    """Transposed ("fractionally strided") convolution layer, as in DCGAN's generator (Radford et al. 2016).

    Params: ``{'w': (*window, in_channels, features), 'b': (features,)}``; see the module docstring for sizes."""
    if ndim is None:
        ndim = 2 if isinstance(kernel_size, int) else len(kernel_size)
    window = _tuple(kernel_size, ndim, "kernel_size")
    strides = _tuple(stride, ndim, "stride")
    w_init = w_init or inits.lecun_normal()

    def out_shape(in_shape: Shape) -> Shape:
        probe = jax.eval_shape(
            lambda x, w: conv_transpose_general(x, w, strides, padding, output_padding),
            jax.ShapeDtypeStruct((1, *in_shape), jnp.float32),
            jax.ShapeDtypeStruct((*window, in_shape[-1], features), jnp.float32),
        )
        return tuple(probe.shape[1:])

    def init(key: Array, in_shape: Shape):
        if len(in_shape) != ndim + 1:
            raise ValueError(
                f"{name}: a {ndim}D transposed convolution expects per-example input (*{ndim} spatial, "
                f"channels); got shape {tuple(in_shape)}"
            )
        kw, kb = jax.random.split(key)
        params = {"w": w_init(kw, (*window, in_shape[-1], features))}
        if use_bias:
            params["b"] = b_init(kb, (features,))
        return params, {}, out_shape(tuple(in_shape))

    def apply(params, state, x, *, key=None, train=False):
        del key, train
        y = conv_transpose_general(x, params["w"], strides, padding, output_padding)
        return (y + params["b"] if use_bias else y), state

    return Layer(init, apply, name)


@jax.custom_vjp
def reverse_gradient(x: Array, scale: Array | float = 1.0) -> Array:
    """Identity forward; backward multiplies the incoming gradient by ``-scale`` (Ganin & Lempitsky 2015's gradient
    reversal layer; ``scale`` is their lambda and gets no gradient)."""
    del scale
    return x


def _reverse_fwd(x, scale):
    return x, jnp.asarray(scale)


def _reverse_bwd(scale, g):
    return (-scale.astype(g.dtype) * g, jnp.zeros_like(scale))


reverse_gradient.defvjp(_reverse_fwd, _reverse_bwd)


def gradient_reversal(scale: float = 1.0, name: str = "gradient_reversal") -> Layer:
    """``reverse_gradient`` with a fixed ``scale`` as a layer (for a schedule, call ``reverse_gradient`` directly)."""
    return stateless(name, lambda x: reverse_gradient(x, scale))
