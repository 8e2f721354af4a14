"""Every convolution strategy, and every per-part CPU plan of 'auto', equals lax.conv_general_dilated in value and
in both gradients (1D/2D/3D, strides, padding, dilation, groups); the fast pooling path equals reduce_window."""

from __future__ import annotations

import functools
import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax import lax

from jaxnets import nn
from jaxnets.nn._conv import _conv_mixed, conv_general, cpu_plan, padding_pairs

# (input shape per example, kernel window, in channels, features, stride, padding pairs, dilation, groups)
CASES = [
    ((9,), (3,), 2, 4, (1,), ((1, 1),), (1,), 1),
    ((10,), (4,), 3, 6, (2,), ((0, 0),), (1,), 1),
    ((8,), (3,), 4, 4, (1,), ((2, 1),), (2,), 2),
    ((12, 12), (5, 5), 1, 6, (1, 1), ((2, 2), (2, 2)), (1, 1), 1),  # LeNet-5 modern's C1
    ((10, 10), (5, 5), 6, 16, (1, 1), ((0, 0), (0, 0)), (1, 1), 1),  # C3
    ((5, 5), (5, 5), 16, 12, (1, 1), ((0, 0), (0, 0)), (1, 1), 1),  # C5: one output position
    ((9, 8), (3, 2), 3, 5, (2, 3), ((1, 0), (0, 2)), (1, 1), 1),
    ((11, 11), (3, 3), 2, 4, (1, 1), ((2, 2), (2, 2)), (2, 2), 1),
    ((8, 8), (3, 3), 4, 6, (2, 2), ((1, 1), (1, 1)), (1, 1), 2),
    ((7, 7), (3, 3), 3, 3, (1, 1), ((1, 1), (1, 1)), (1, 1), 3),  # depthwise
    ((6, 6, 6), (3, 3, 3), 2, 3, (1, 1, 1), ((1, 1),) * 3, (1, 1, 1), 1),
    ((7, 6, 5), (2, 3, 2), 2, 4, (2, 1, 2), ((0, 1), (1, 1), (0, 0)), (1, 1, 2), 1),
]
IDS = [f"{len(c[0])}d-k{'x'.join(map(str, c[1]))}-c{c[2]}-f{c[3]}-s{c[4][0]}-d{c[6][0]}-g{c[7]}" for c in CASES]


def _case(case, seed=0):
    spatial, window, cin, features, stride, padding, dilation, groups = case
    rng = np.random.default_rng(seed)
    x = jnp.asarray(rng.standard_normal((3, *spatial, cin)), jnp.float32)
    w = jnp.asarray(rng.standard_normal((*window, cin // groups, features)), jnp.float32)
    return x, w, stride, padding, dilation, groups


def _reference(x, w, stride, padding, dilation, groups):
    nd = x.ndim - 2
    sp = "DHW"[-nd:]
    return lax.conv_general_dilated(
        x,
        w,
        stride,
        padding,
        rhs_dilation=dilation,
        feature_group_count=groups,
        dimension_numbers=(f"N{sp}C", f"{sp}IO", f"N{sp}C"),
    )


def _value_and_grads(convs, x, w, ct):
    """For each function in ``convs``: its value and the gradients of <ct, conv(x, w)> in x and w (one jit)."""

    def one(conv, x, w):
        return conv(x, w), *jax.grad(lambda x, w: jnp.sum(ct * conv(x, w)), (0, 1))(x, w)

    return jax.jit(lambda x, w: [one(conv, x, w) for conv in convs])(x, w)


@functools.cache
def _expected(index: int, seed: int):
    """Inputs, cotangent and lax's value and gradients for ``CASES[index]`` (computed once per session)."""
    x, w, stride, padding, dilation, groups = _case(CASES[index], seed)
    ref = lambda x, w: _reference(x, w, stride, padding, dilation, groups)  # noqa: E731
    ct = jax.random.normal(jax.random.key(seed + 1), ref(x, w).shape)
    return x, w, ct, _value_and_grads([ref], x, w, ct)[0]


def _assert_close(got, want):
    for g, r in zip(got, want, strict=True):
        assert g.shape == r.shape
        np.testing.assert_allclose(g, r, rtol=1e-4, atol=1e-4 * float(jnp.max(jnp.abs(r))))


@pytest.mark.parametrize("index", range(len(CASES)), ids=IDS)
def test_strategies_equal_lax_value_and_gradients(index):
    _, _, stride, padding, dilation, groups = _case(CASES[index])
    x, w, ct, want = _expected(index, 0)
    convs = [lambda x, w, s=s: conv_general(x, w, stride, padding, groups, dilation, s) for s in ("im2col", "auto")]
    for got in _value_and_grads(convs, x, w, ct):
        _assert_close(got, want)


PLANS = [p for p in itertools.product(("xla", "im2col"), repeat=3) if "im2col" in p]


MIXED = (0, 4, 6, 11)  # 1D with padding, C3, strided 2D with uneven padding, 3D strided and dilated


@pytest.mark.parametrize("index", MIXED, ids=[IDS[i] for i in MIXED])
def test_every_mixed_plan_equals_lax(index):
    """'auto' joins a forward, an input gradient (col2im when 'im2col') and a kernel gradient: every combination."""
    _, _, stride, padding, dilation, groups = _case(CASES[index])
    x, w, ct, want = _expected(index, 0)
    convs = [lambda x, w, p=p: _conv_mixed(x, w, stride, padding, groups, dilation, p) for p in PLANS]
    for got in _value_and_grads(convs, x, w, ct):
        _assert_close(got, want)


def test_cpu_plan_choices():
    assert cpu_plan((5, 5, 1, 6)) == ("im2col", "im2col", "xla")  # few channels: im2col forward
    assert cpu_plan((5, 5, 6, 16)) == ("xla", "im2col", "xla")
    assert cpu_plan((3, 3, 1, 4), groups=4) == ("xla", "xla", "xla")


def test_auto_gives_second_derivatives():
    """The custom VJP's backward pass is itself differentiable (e.g. for gradient penalties)."""
    x, w, stride, padding, dilation, groups = _case(CASES[4])

    def gnorm(conv):
        return jax.grad(lambda w: jnp.sum(jax.grad(lambda x: jnp.sum(conv(x, w) ** 2))(x) ** 2))(w)

    got = gnorm(lambda x, w: conv_general(x, w, stride, padding, groups, dilation, "auto"))
    want = gnorm(lambda x, w: _reference(x, w, stride, padding, dilation, groups))
    np.testing.assert_allclose(got, want, rtol=1e-3, atol=1e-3 * float(jnp.max(jnp.abs(want))))


@pytest.mark.parametrize(
    ("shape", "window", "stride", "padding"),
    [
        ((2, 9, 7, 3), 2, None, "VALID"),
        ((2, 7, 7, 2), 2, None, "SAME"),
        ((2, 9, 9, 2), (3, 3), None, "VALID"),
        ((2, 4, 6, 4, 2), 2, None, "VALID"),
        ((2, 7, 7, 2), 3, 1, "SAME"),  # overlapping windows: reduce_window
    ],
)
def test_pooling_equals_reduce_window_with_ties(shape, window, stride, padding):
    """Non-overlapping pooling is a reshape and reduction; its max gradient goes to the first maximum of a window,
    exactly like reduce_window's (select_and_scatter), also when values tie (integers here: many ties)."""
    x = jnp.round(2 * jax.random.normal(jax.random.key(0), shape))
    nd = len(shape) - 2
    win = (window,) * nd if isinstance(window, int) else tuple(window)
    strides = win if stride is None else (stride,) * nd
    pads = padding_pairs(padding, win, strides, shape[1:-1])
    full = ((0, 0), *pads, (0, 0))
    refs = {
        "max": lambda x: lax.reduce_window(x, -jnp.inf, lax.max, (1, *win, 1), (1, *strides, 1), full),
        "avg": lambda x: (
            lax.reduce_window(x, 0.0, lax.add, (1, *win, 1), (1, *strides, 1), full)
            / lax.reduce_window(jnp.ones_like(x), 0.0, lax.add, (1, *win, 1), (1, *strides, 1), full)
        ),
    }
    layers = {"max": nn.max_pool(window, stride, padding), "avg": nn.avg_pool(window, stride, padding)}
    ct = jax.random.normal(jax.random.key(1), refs["max"](x).shape)
    convs = [
        lambda x, w, f=f: f(x) * w
        for f in (*refs.values(), *(lambda x, ly=ly: ly.apply({}, {}, x)[0] for ly in layers.values()))
    ]
    ref_max, ref_avg, got_max, got_avg = _value_and_grads(convs, x, jnp.ones(()), ct)
    _assert_close(got_max, ref_max)
    _assert_close(got_avg, ref_avg)
