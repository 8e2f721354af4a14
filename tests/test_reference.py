"""Dense, convolution, pooling and batch-norm outputs equal flax.linen's, given the same parameters, to 1e-5."""

from __future__ import annotations

import flax.linen as fnn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from helpers import abstract_init

from jaxnets import nn

TOL = dict(rtol=1e-5, atol=1e-5)


def _rand(rng, shape, scale=1.0):
    return jnp.asarray(rng.standard_normal(shape) * scale, jnp.float32)


def test_dense_matches_flax():
    rng = np.random.default_rng(0)
    layer = nn.dense(7)
    params, _, out_shape = abstract_init(layer, (5,))
    params = {"w": _rand(rng, (5, 7)), "b": _rand(rng, (7,))}
    x = _rand(rng, (4, 5))
    y, _ = layer.apply(params, {}, x)
    ref = fnn.Dense(7).apply({"params": {"kernel": params["w"], "bias": params["b"]}}, x)
    assert y.shape == (4, *out_shape) == ref.shape
    np.testing.assert_allclose(y, ref, **TOL)


CONV_CASES = [
    # (in_shape per example, features, kernel, stride, padding, groups, dilation)
    ((11, 3), 4, 3, 1, "VALID", 1, 1),
    ((11, 4), 6, 4, 2, "SAME", 2, 1),
    ((12, 2), 3, 3, 3, 2, 1, 2),
    ((9, 8, 3), 5, 3, 1, "SAME", 1, 1),
    ((9, 8, 3), 4, (3, 2), (2, 3), "VALID", 1, 1),
    ((10, 9, 4), 8, 3, 2, 1, 4, 1),
    ((10, 9, 2), 4, 3, 1, ((2, 0), (1, 3)), 2, (2, 1)),
    ((9, 9, 6), 6, 5, 2, "SAME", 6, 1),  # depthwise
    ((5, 6, 5, 2), 3, 3, 1, "SAME", 1, 1),
    ((6, 5, 6, 4), 4, (2, 3, 2), (2, 1, 2), "VALID", 2, 1),
    ((6, 6, 6, 2), 2, 2, 1, 1, 1, 2),
]


@pytest.mark.parametrize("strategy", nn.STRATEGIES)
@pytest.mark.parametrize(("in_shape", "features", "kernel", "stride", "padding", "groups", "dilation"), CONV_CASES)
def test_conv_matches_flax(strategy, in_shape, features, kernel, stride, padding, groups, dilation):
    nd = len(in_shape) - 1
    rng = np.random.default_rng(hash((in_shape, features)) % 2**32)
    layer = nn.conv(
        features, kernel, ndim=nd, stride=stride, padding=padding, groups=groups, dilation=dilation, strategy=strategy
    )
    params, _, out_shape = abstract_init(layer, in_shape)
    params = {"w": _rand(rng, params["w"].shape, 0.3), "b": _rand(rng, (features,))}
    x = _rand(rng, (2, *in_shape))
    y, _ = jax.jit(layer.apply)(params, {}, x)
    kernel_size = (kernel,) * nd if isinstance(kernel, int) else kernel
    ref_conv = fnn.Conv(
        features, kernel_size, strides=stride, padding=padding, feature_group_count=groups, kernel_dilation=dilation
    )
    ref = jax.jit(ref_conv.apply)({"params": {"kernel": params["w"], "bias": params["b"]}}, x)
    assert y.shape == ref.shape == (2, *out_shape)
    np.testing.assert_allclose(y, ref, **TOL)


@pytest.mark.parametrize("strategy", nn.STRATEGIES)
def test_conv_general_strategies_agree_without_bias(strategy):
    rng = np.random.default_rng(1)
    x, w = _rand(rng, (2, 7, 7, 4)), _rand(rng, (3, 3, 2, 6))
    y = nn.conv_general(x, w, (2, 1), ((1, 1), (0, 2)), groups=2, dilation=(1, 2), strategy=strategy)
    ref = jax.lax.conv_general_dilated(
        x,
        w,
        (2, 1),
        ((1, 1), (0, 2)),
        rhs_dilation=(1, 2),
        dimension_numbers=("NHWC", "HWIO", "NHWC"),
        feature_group_count=2,
    )
    np.testing.assert_allclose(y, ref, **TOL)


POOL_CASES = [
    # (in_shape, window, stride, padding)
    ((8, 3), 2, None, "VALID"),
    ((8, 8, 2), 2, None, "VALID"),
    ((9, 7, 2), 3, 2, "VALID"),
    ((9, 7, 2), 3, 2, "SAME"),
    ((7, 7, 3), (2, 3), (1, 2), ((1, 0), (1, 1))),
    ((4, 5, 4, 2), 2, 1, "SAME"),
]


POOLS = {
    "max": (nn.max_pool, fnn.max_pool),
    # padded positions are excluded from the mean (flax's count_include_pad=False)
    "avg": (nn.avg_pool, lambda *a: fnn.avg_pool(*a, count_include_pad=False)),
}


@pytest.mark.parametrize("kind", sorted(POOLS))
@pytest.mark.parametrize(("in_shape", "window", "stride", "padding"), POOL_CASES)
def test_pool_matches_flax(kind, in_shape, window, stride, padding):
    ours, theirs = POOLS[kind]
    nd = len(in_shape) - 1
    x = _rand(np.random.default_rng(2), (2, *in_shape))
    layer = ours(window, stride, padding)
    _, _, out_shape = abstract_init(layer, in_shape)
    y, _ = layer.apply({}, {}, x)
    win = (window,) * nd if isinstance(window, int) else window
    stride = window if stride is None else stride  # flax's default stride is 1, jaxnets' is the window
    strides = (stride,) * nd if isinstance(stride, int) else stride
    ref = theirs(x, win, strides, padding)
    assert y.shape == ref.shape == (2, *out_shape)
    np.testing.assert_allclose(y, ref, **TOL)


def test_subsample_is_scaled_average_pool():
    rng = np.random.default_rng(4)
    x = _rand(rng, (2, 6, 6, 3))
    params = {"coef": _rand(rng, (3,)), "b": _rand(rng, (3,))}
    y, _ = nn.subsample(2).apply(params, {}, x)
    ref = fnn.avg_pool(x, (2, 2), (2, 2)) * params["coef"] + params["b"]
    np.testing.assert_allclose(y, ref, **TOL)


@pytest.mark.parametrize("in_shape", [(5,), (4, 4, 3), (3, 4, 3, 2)])
def test_batch_norm_matches_flax(in_shape):
    """Training output and the running-statistics update, then evaluation with the running averages."""
    rng = np.random.default_rng(5)
    c = in_shape[-1]
    momentum, eps = 0.8, 1e-5
    layer = nn.batch_norm(momentum=momentum, eps=eps)
    params, state, _ = abstract_init(layer, in_shape)
    assert set(params) == {"scale", "bias"} and set(state) == {"mean", "var"}
    params = {"scale": _rand(rng, (c,)), "bias": _rand(rng, (c,))}
    state = {"mean": _rand(rng, (c,)), "var": jnp.asarray(rng.uniform(0.5, 2.0, c), jnp.float32)}
    x = _rand(rng, (6, *in_shape), 2.0) + 1.5
    ref_bn = fnn.BatchNorm(momentum=momentum, epsilon=eps)
    variables = {"params": params, "batch_stats": state}

    y, new_state = layer.apply(params, state, x, train=True)
    ref, updates = ref_bn.apply(variables, x, use_running_average=False, mutable=["batch_stats"])
    np.testing.assert_allclose(y, ref, **TOL)
    for k in ("mean", "var"):
        np.testing.assert_allclose(new_state[k], updates["batch_stats"][k], **TOL)
        assert not np.allclose(new_state[k], state[k])  # the running statistics did move
    # the update rule written out: ra <- momentum * ra + (1 - momentum) * batch statistic
    axes = tuple(range(x.ndim - 1))
    np.testing.assert_allclose(new_state["mean"], momentum * state["mean"] + (1 - momentum) * x.mean(axes), **TOL)
    np.testing.assert_allclose(new_state["var"], momentum * state["var"] + (1 - momentum) * x.var(axes), **TOL)

    y_eval, same_state = layer.apply(params, new_state, x, train=False)
    ref_eval = ref_bn.apply({"params": params, "batch_stats": new_state}, x, use_running_average=True)
    np.testing.assert_allclose(y_eval, ref_eval, **TOL)
    assert not np.allclose(y_eval, y, atol=1e-3)  # eval really uses the running, not the batch, statistics
    for k in ("mean", "var"):
        np.testing.assert_array_equal(same_state[k], new_state[k])  # evaluation leaves the statistics alone
