"""Layers and combinators: dropout semantics, shapes, parameter naming, activations and bad arguments."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from helpers import abstract_init, random_like

from jaxnets import count_params, nn, summary

KEY = jax.random.key(0)


# --- dropout -------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("rate", [0.1, 0.5, 0.8])
def test_dropout_rate_is_the_drop_probability(rate):
    x = jnp.ones((400, 500))
    y, _ = nn.dropout(rate).apply({}, {}, x, key=jax.random.key(7), train=True)
    dropped = float(jnp.mean(y == 0))
    # 200,000 Bernoulli draws: the standard error of the fraction is below 0.0012, so 0.006 is 5 sigma
    assert abs(dropped - rate) < 0.006, dropped
    np.testing.assert_allclose(y[y != 0], 1.0 / (1.0 - rate), rtol=1e-6)  # survivors are scaled up
    assert abs(float(jnp.mean(y)) - 1.0) < 0.02  # so the expectation is unchanged


def test_dropout_eval_is_identity_and_train_needs_a_key():
    x = jnp.asarray(np.random.default_rng(0).standard_normal((4, 6)), jnp.float32)
    layer = nn.dropout(0.5)
    y, _ = layer.apply({}, {}, x, key=KEY, train=False)
    np.testing.assert_array_equal(y, x)
    y, _ = layer.apply({}, {}, x)  # eval is the default
    np.testing.assert_array_equal(y, x)
    with pytest.raises(ValueError, match="needs a PRNG key"):
        layer.apply({}, {}, x, train=True)
    a, _ = layer.apply({}, {}, x, key=jax.random.key(1), train=True)
    b, _ = layer.apply({}, {}, x, key=jax.random.key(1), train=True)
    c, _ = layer.apply({}, {}, x, key=jax.random.key(2), train=True)
    np.testing.assert_array_equal(a, b)  # a fixed key gives a fixed mask
    assert not np.array_equal(a, c)
    y0, _ = nn.dropout(0.0).apply({}, {}, x, train=True)  # rate 0 needs no key and changes nothing
    np.testing.assert_array_equal(y0, x)


@pytest.mark.parametrize("rate", [1.0, -0.1, 1.5])
def test_dropout_rejects_rates_outside_zero_one(rate):
    with pytest.raises(ValueError, match=r"must be in \[0, 1\)") as err:
        nn.dropout(rate)
    assert "\n" not in str(err.value)


def test_serial_passes_distinct_keys_to_each_dropout():
    layer = nn.serial(nn.dropout(0.5), nn.dropout(0.5))
    params, state, _ = layer.init(KEY, (1000,))
    assert params == {} and state == {}
    y, _ = layer.apply(params, state, jnp.ones((1, 1000)), key=jax.random.key(3), train=True)
    # independent masks keep a quarter of the units; one mask reused would keep half
    assert abs(float(jnp.mean(y != 0)) - 0.25) < 0.05


# --- shapes, names and combinators ---------------------------------------------------------------------------------


def test_dense_and_flatten_shapes():
    params, _, out = abstract_init(nn.serial(nn.flatten(), nn.dense(5)), (3, 4, 2))
    assert out == (5,)
    assert params["dense"]["w"].shape == (24, 5) and params["dense"]["b"].shape == (5,)


def test_serial_names_parameters_uniquely_and_named_renames():
    layer = nn.serial(nn.dense(4), nn.activation("relu"), nn.dense(3), nn.named("head", nn.dense(2)))
    params, state, out = abstract_init(layer, (5,))
    assert set(params) == {"dense0", "dense2", "head"} and state == {} and out == (2,)
    assert count_params(params) == {"dense0": 24, "dense2": 15, "head": 8, "total": 47}
    table = summary(params)
    assert "dense0" in table and "47" in table.splitlines()[-1]


def test_parallel_concatenates_channels_and_checks_shapes():
    layer = nn.parallel(nn.conv2d(3, 3, padding="SAME"), nn.conv2d(5, 1), nn.max_pool(3, stride=1, padding="SAME"))
    params, _, out = abstract_init(layer, (6, 6, 2))
    assert out == (6, 6, 10)
    params = random_like(params, np.random.default_rng(0))
    x = jnp.asarray(np.random.default_rng(1).standard_normal((2, 6, 6, 2)), jnp.float32)
    y, _ = jax.jit(layer.apply)(params, {}, x)
    assert y.shape == (2, 6, 6, 10)
    np.testing.assert_array_equal(y[..., 8:], nn.max_pool(3, stride=1, padding="SAME").apply({}, {}, x)[0])
    with pytest.raises(ValueError, match="must agree on all but the channel axis"):
        nn.parallel(nn.conv2d(3, 3), nn.conv2d(3, 1)).init(KEY, (6, 6, 2))
    with pytest.raises(ValueError, match="must agree on all but the channel axis"):  # same height, other widths
        nn.parallel(nn.conv2d(3, (1, 3)), nn.conv2d(3, 1)).init(KEY, (6, 6, 2))


def test_residual_adds_the_shortcut():
    body = nn.dense(3)
    layer = nn.residual(body)
    params, _, out = abstract_init(layer, (3,))
    assert out == (3,) and set(params) == {"body"}
    params = random_like(params, np.random.default_rng(0))
    x = jnp.asarray(np.random.default_rng(1).standard_normal((4, 3)), jnp.float32)
    y, _ = layer.apply(params, {}, x)
    np.testing.assert_allclose(y, body.apply(params["body"], {}, x)[0] + x, rtol=1e-6)
    with pytest.raises(ValueError, match="same shape"):
        nn.residual(nn.dense(4)).init(KEY, (3,))


def test_batch_norm_state_flows_through_serial():
    layer = nn.serial(nn.dense(3), nn.batch_norm(momentum=0.5), nn.activation("relu"))
    params, state, _ = layer.init(KEY, (4,))
    assert set(state) == {"batch_norm"}
    x = jnp.asarray(np.random.default_rng(0).standard_normal((8, 4)) + 3.0, jnp.float32)
    _, new_state = layer.apply(params, state, x, train=True)
    assert not np.allclose(new_state["batch_norm"]["mean"], 0.0)
    _, eval_state = layer.apply(params, new_state, x, train=False)
    np.testing.assert_array_equal(eval_state["batch_norm"]["mean"], new_state["batch_norm"]["mean"])


@pytest.mark.parametrize(("strategy", "groups"), [("xla", 1), ("im2col", 1), ("xla", 3), ("im2col", 3)])
def test_conv_3d_shapes(strategy, groups):
    layer = nn.conv3d(6, (2, 3, 3), stride=(1, 2, 2), padding="SAME", groups=groups, strategy=strategy)
    params, _, out = abstract_init(layer, (4, 7, 8, 3))
    assert out == (4, 4, 4, 6) and params["w"].shape == (2, 3, 3, 3 // groups, 6)
    y, _ = layer.apply(random_like(params, np.random.default_rng(0)), {}, jnp.ones((2, 4, 7, 8, 3)))
    assert y.shape == (2, *out)


# --- activations ---------------------------------------------------------------------------------------------------


def test_activation_values():
    x = jnp.asarray([-2.0, -0.5, 0.0, 1.0, 3.0])
    np.testing.assert_allclose(nn.lecun_tanh(x), 1.7159 * np.tanh(2 * np.asarray(x) / 3), rtol=1e-6)
    np.testing.assert_allclose(nn.lecun_tanh(jnp.asarray([1.0, -1.0])), [1.0, -1.0], atol=2e-4)  # f(+-1) = +-1
    np.testing.assert_allclose(nn.get_activation("relu")(x), [0, 0, 0, 1, 3])
    np.testing.assert_allclose(nn.get_activation("leaky_relu")(x), [-0.02, -0.005, 0, 1, 3], rtol=1e-6)
    np.testing.assert_allclose(nn.get_activation("sigmoid")(x), 1 / (1 + np.exp(-np.asarray(x))), rtol=1e-6)
    np.testing.assert_allclose(nn.get_activation("identity")(x), x)
    sm = nn.get_activation("softmax")(x[None])
    np.testing.assert_allclose(sm.sum(), 1.0, rtol=1e-6)
    y, _ = nn.activation("tanh").apply({}, {}, x[None])
    np.testing.assert_allclose(y[0], np.tanh(np.asarray(x)), rtol=1e-6)


def test_every_activation_has_an_initialiser():
    for name in nn.ACTIVATIONS:
        w = nn.initializers.for_activation(name)(KEY, (50, 40))
        assert w.shape == (50, 40) and 0.02 < float(jnp.std(w)) < 0.5


# --- bad arguments -------------------------------------------------------------------------------------------------


def _one_line_value_error(fn, match):
    with pytest.raises(ValueError, match=match) as err:
        fn()
    assert "\n" not in str(err.value), str(err.value)


@pytest.mark.parametrize("padding", ["FULL", "same-ish", (1, 2, 3), ((1, 1),)])
def test_bad_padding(padding):
    _one_line_value_error(lambda: nn.conv2d(4, 3, padding=padding), "padding must be 'SAME', 'VALID'")


def test_bad_pool_arguments():
    _one_line_value_error(lambda: nn.max_pool(2, padding="CAUSAL"), "padding must be")
    _one_line_value_error(lambda: nn.avg_pool(2, stride=0), "stride must be a positive int")
    _one_line_value_error(lambda: nn.max_pool(0), "window must be a positive int")


def test_bad_strategy():
    _one_line_value_error(lambda: nn.conv2d(4, 3, strategy="fft"), r"unknown convolution strategy 'fft'; choose one of")
    x, w = jnp.ones((1, 4, 4, 1)), jnp.ones((3, 3, 1, 1))
    _one_line_value_error(
        lambda: nn.conv_general(x, w, (1, 1), ((0, 0), (0, 0)), strategy="winograd"), "unknown convolution strategy"
    )


def test_bad_activation():
    _one_line_value_error(lambda: nn.activation("swish"), r"unknown activation 'swish'; choose one of \[")
    _one_line_value_error(lambda: nn.initializers.for_activation("swish"), "no initialiser for activation 'swish'")


@pytest.mark.parametrize("kwargs", [dict(stride=0), dict(kernel_size=0), dict(dilation=0), dict(stride=(1, 2, 3))])
def test_bad_conv_geometry(kwargs):
    args = {"features": 4, "kernel_size": 3, **kwargs}
    _one_line_value_error(lambda: nn.conv2d(**args), "must be a positive int or a sequence of 2")


def test_bad_groups_and_channels():
    _one_line_value_error(lambda: nn.conv2d(5, 3, groups=2), r"features \(5\) must be a positive multiple of groups")
    _one_line_value_error(lambda: nn.conv2d(4, 3, groups=2).init(KEY, (6, 6, 3)), r"input channels \(3\)")
    _one_line_value_error(lambda: nn.conv2d(4, 3).init(KEY, (6, 3)), "a 2D convolution expects per-example input")
    _one_line_value_error(lambda: nn.conv2d(4, 5).init(KEY, (3, 3, 1)), "larger than the padded input")
    table = np.ones((3, 4), bool)
    _one_line_value_error(lambda: nn.conv2d(4, 3, connections=table, groups=2), "cannot be combined")
    _one_line_value_error(lambda: nn.conv2d(5, 3, connections=table), r"boolean \(in_channels, 5\) table")
    _one_line_value_error(lambda: nn.conv2d(4, 3, connections=table).init(KEY, (6, 6, 2)), "3 rows for 2 input")
    for bad in (lambda: nn.conv_output_size(5, 3, s=0), lambda: nn.conv_output_size(5, 3, p=-1)):
        _one_line_value_error(bad, "stride s >= 1")


INITIALISERS = [
    (nn.initializers.lecun_normal(), jax.nn.initializers.lecun_normal()),
    (nn.initializers.he_normal(), jax.nn.initializers.he_normal()),
    (nn.initializers.glorot_uniform(), jax.nn.initializers.glorot_uniform()),
    (nn.initializers.normal(0.02), jax.nn.initializers.normal(0.02)),
    (
        nn.initializers.variance_scaling(1 / 3, "fan_out", "normal"),
        jax.nn.initializers.variance_scaling(1 / 3, "fan_out", "normal"),
    ),
]


@pytest.mark.parametrize("ours, theirs", INITIALISERS)
def test_bucketed_initialisers_draw_jaxs_values_bit_for_bit(ours, theirs):
    # drawn flat at a power-of-two (past 2^20: a multiple of 2^20) length and sliced: equal only because
    # threefry_partitionable makes element i depend on (key, i) alone. Shapes of one bucket share one compilation.
    for shape in [(7, 9), (5, 5, 6, 16)]:
        np.testing.assert_array_equal(ours(KEY, shape), theirs(KEY, shape), err_msg=str(shape))


def test_bucketed_initialiser_past_the_power_of_two_buckets_in_bfloat16_under_vmap_and_without_partitionable():
    ours, theirs = nn.initializers.he_normal(), jax.nn.initializers.he_normal()
    np.testing.assert_array_equal(ours(KEY, (1025, 1024)), theirs(KEY, (1025, 1024)))
    np.testing.assert_array_equal(ours(KEY, (4, 6), jnp.bfloat16), theirs(KEY, (4, 6), jnp.bfloat16))
    keys = jax.random.split(KEY, 3)
    np.testing.assert_array_equal(
        jax.vmap(lambda k: ours(k, (6, 10)))(keys), jax.vmap(lambda k: theirs(k, (6, 10)))(keys)
    )
    with jax.threefry_partitionable(False):  # the stream then depends on the shape: drawn as jax draws it
        np.testing.assert_array_equal(ours(KEY, (5, 6)), theirs(KEY, (5, 6)))


def test_variance_scaling_rejects_unknown_options_in_one_line():
    _one_line_value_error(lambda: nn.initializers.variance_scaling(1.0, "fan_geo", "normal"), "mode must be")
    _one_line_value_error(lambda: nn.initializers.variance_scaling(1.0, "fan_in", "cauchy"), "distribution must be")
    _one_line_value_error(lambda: nn.initializers.he_normal()(KEY, (5,)), "2 or more axes")


@pytest.mark.parametrize("shape", [(64, 64), (4, 64), (64, 2), (3, 3, 8, 16)])
def test_orthogonal_draws_jaxs_orthogonal_matrices(shape):
    key = jax.random.key(3)
    w = nn.initializers.orthogonal(1.5)(key, shape)
    np.testing.assert_array_equal(w, jax.nn.initializers.orthogonal(1.5)(key, shape))  # QR of the same Gaussian draw
    m = np.asarray(w).reshape(-1, shape[-1]) / 1.5
    small = m.T @ m if m.shape[0] >= m.shape[1] else m @ m.T
    np.testing.assert_allclose(small, np.eye(len(small)), atol=1e-5)


def _eqns(jaxpr):
    """Every equation of a jaxpr and of the jaxprs inside it (scan, cond, jit and custom_vmap bodies)."""
    for eqn in jaxpr.eqns:
        yield eqn
        for v in eqn.params.values():
            for sub in v if isinstance(v, tuple | list) else (v,):
                inner = getattr(sub, "jaxpr", sub)
                if hasattr(inner, "eqns"):
                    yield from _eqns(inner)


@pytest.mark.parametrize("orthogonal", [nn.initializers.orthogonal, jax.nn.initializers.orthogonal])
def test_orthogonal_under_vmap_runs_no_batched_qr(orthogonal):
    # jaxlib 0.10.2's batched CPU QR blocks a worker of XLA's thread pool on tasks queued to that same pool: PPO's
    # init vmapped over seeds (README, notebook 08) hung CI twice for 600 s, and `jit(vmap(lambda z: qr(z)[0]))` over
    # 4 pairs of 64x64 matrices, run 200 times, hung 8 times in 8 (2026-12-02). Ours QRs one matrix at a time.
    init = lambda k: [orthogonal()(jax.random.fold_in(k, i), (64, 64)) for i in range(2)]  # noqa: E731
    keys = jax.random.split(KEY, 4)
    qrs = [e for e in _eqns(jax.make_jaxpr(jax.vmap(init))(keys).jaxpr) if e.primitive.name == "qr"]
    batched = [e.invars[0].aval.shape for e in qrs if e.invars[0].aval.ndim > 2]
    if orthogonal is jax.nn.initializers.orthogonal:
        assert batched, "jax's own initialiser no longer batches its QR: the workaround may be dropped"
        return
    assert qrs and not batched
    both = jax.jit(jax.vmap(init))(keys)
    for i, k in enumerate(keys):
        jax.tree.map(lambda a, b, i=i: np.testing.assert_array_equal(a[i], b), both, init(k))


def test_masked_softmax_weights_only_valid_entries_and_an_empty_row_is_zero():
    logits = jnp.array([[1.0, 2.0, 3.0], [0.5, -1.0, 2.0]])
    mask = jnp.array([[True, True, False], [False, False, False]])
    p = nn.masked_softmax(logits, mask)
    np.testing.assert_allclose(p[0], [np.exp(1) / (np.exp(1) + np.exp(2)), np.exp(2) / (np.exp(1) + np.exp(2)), 0])
    np.testing.assert_array_equal(p[1], 0.0)
    g = jax.grad(lambda z: nn.masked_softmax(z, mask)[:, 0].sum())(logits)
    assert np.all(np.isfinite(g)) and np.all(g[1] == 0) and g[0, 2] == 0
    np.testing.assert_allclose(nn.masked_softmax(logits, None), jax.nn.softmax(logits), rtol=1e-6)
