"""Tests that bite: each checks a documented property against an independent computation sharp enough to notice a
factor of two, a sign, an off-by-one and a missing epsilon (issue 23). Public names only.

- batch norm on degenerate channels (constant, variance ~1e-6), where a missing or wrong epsilon changes the output
  by orders of magnitude, in training and evaluation;
- one, two steps of ``make_train_step`` equal to SGD, momentum and Adam written out by hand (an update applied
  twice moves twice as far);
- the batches ``fit`` draws, recorded through the public optimiser hook: every epoch is a fresh order, and the same
  seed (straight or resumed) gives the same orders;
- then one test per survivor of the first ``tests/mutate.py`` run, each against its formula written out.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jaxnets import data, losses, nn, train
from jaxnets.models import Model

# --- batch norm on degenerate channels ----------------------------------------------------------------------------

DEFAULT_EPS = 1e-5  # the usual batch-norm epsilon (Ioffe & Szegedy; PyTorch and Flax use it too)


def _degenerate_batch() -> np.ndarray:
    """(8, 2, 2, 3) NHWC: channel 0 constant (variance 0), channel 1 variance ~1e-6, channel 2 ordinary."""
    rng = np.random.default_rng(0)
    x = np.empty((8, 2, 2, 3))
    x[..., 0] = 0.75
    x[..., 1] = 0.5 + 1e-3 * rng.standard_normal((8, 2, 2))
    x[..., 2] = 2.0 + 3.0 * rng.standard_normal((8, 2, 2))
    return x


def _bn_reference(x, mean, var, scale, bias, eps):
    """(x - mean) / sqrt(var + eps) * scale + bias, in float64."""
    return (x - mean) / np.sqrt(var + eps) * scale + bias


@pytest.mark.parametrize("eps", [None, 1e-3])
def test_batch_norm_train_on_degenerate_channels_matches_formula_with_eps(eps):
    x = _degenerate_batch()
    layer = nn.batch_norm(momentum=0.8) if eps is None else nn.batch_norm(momentum=0.8, eps=eps)
    eps = DEFAULT_EPS if eps is None else eps
    params = {"scale": jnp.asarray([1.5, 2.0, -0.5]), "bias": jnp.asarray([0.25, -1.0, 3.0])}
    state = {"mean": jnp.asarray([0.1, -0.2, 0.3]), "var": jnp.asarray([0.5, 2.0, 1.0])}
    y, new_state = layer.apply(params, state, jnp.asarray(x, jnp.float32), train=True)

    mean = x.mean(axis=(0, 1, 2))
    var = ((x - mean) ** 2).mean(axis=(0, 1, 2))  # biased: the batch's own variance
    assert var[0] == 0.0 and 1e-7 < var[1] < 1e-5
    want = _bn_reference(x, mean, var, np.asarray(params["scale"]), np.asarray(params["bias"]), eps)
    assert np.all(np.isfinite(np.asarray(y)))
    np.testing.assert_allclose(y, want, rtol=1e-3, atol=1e-4)
    # the constant channel comes out as its bias exactly (0 / sqrt(eps) = 0): no NaN from 0 / 0
    np.testing.assert_allclose(y[..., 0], 0.25, atol=1e-6)
    # running averages: momentum * old + (1 - momentum) * batch
    np.testing.assert_allclose(new_state["mean"], 0.8 * np.asarray(state["mean"]) + 0.2 * mean, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(new_state["var"], 0.8 * np.asarray(state["var"]) + 0.2 * var, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("eps", [None, 0.1])
def test_batch_norm_eval_with_degenerate_running_variance_matches_formula_with_eps(eps):
    rng = np.random.default_rng(1)
    x = rng.standard_normal((5, 3)) * [1e-3, 1e-3, 2.0] + [0.5, -0.5, 1.0]
    layer = nn.batch_norm() if eps is None else nn.batch_norm(eps=eps)
    eps = DEFAULT_EPS if eps is None else eps
    params = {"scale": jnp.asarray([1.5, 2.0, -0.5]), "bias": jnp.asarray([0.25, -1.0, 3.0])}
    state = {"mean": jnp.asarray([0.5, -0.5, 0.75]), "var": jnp.asarray([0.0, 1e-6, 2.0])}
    y, new_state = layer.apply(params, state, jnp.asarray(x, jnp.float32), train=False)
    want = _bn_reference(
        x,
        np.asarray(state["mean"], np.float64),
        np.asarray(state["var"], np.float64),
        np.asarray(params["scale"]),
        np.asarray(params["bias"]),
        eps,
    )
    np.testing.assert_allclose(y, want, rtol=1e-3, atol=1e-4)
    for k in state:  # evaluation leaves the running statistics alone
        np.testing.assert_array_equal(new_state[k], state[k])


def test_batch_norm_default_eps_is_1e_5():
    """Observed, not read off the signature: a zero running variance divides by sqrt(eps)."""
    y, _ = nn.batch_norm().apply(
        {"scale": jnp.ones(1), "bias": jnp.zeros(1)},
        {"mean": jnp.zeros(1), "var": jnp.zeros(1)},
        jnp.full((2, 1), 1e-3),
        train=False,
    )
    np.testing.assert_allclose(y, 1e-3 / np.sqrt(DEFAULT_EPS), rtol=1e-5)


# --- the train step against optimisers written out by hand --------------------------------------------------------


def _linear_classifier() -> Model:
    """Softmax regression 4 -> 3: logits = x @ w + b."""
    return Model("softmax_regression", nn.dense(3), (4,), head="softmax")


def _batches(steps: int) -> list[tuple[np.ndarray, np.ndarray]]:
    rng = np.random.default_rng(2)
    return [(rng.standard_normal((6, 4)), rng.integers(0, 3, 6)) for _ in range(steps)]


def _loss_and_grad(w: np.ndarray, b: np.ndarray, x: np.ndarray, y: np.ndarray):
    """Mean softmax cross-entropy and its gradient, by hand in float64: d/dlogits = (softmax - onehot) / batch."""
    logits = x @ w + b
    logits = logits - logits.max(axis=1, keepdims=True)
    p = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    loss = -np.log(p[np.arange(len(y)), y]).mean()
    d = (p - np.eye(3)[y]) / len(y)
    return loss, x.T @ d, d.sum(axis=0)


def _run_steps(optimizer, batches):
    model = _linear_classifier()
    state = train.create_train_state(model, optimizer, jax.random.PRNGKey(3))
    start = {k: np.asarray(v, np.float64) for k, v in state.params.items()}
    step = train.make_train_step(model, optimizer)
    losses = []
    for x, y in batches:
        state, metrics = step(state, jnp.asarray(x, jnp.float32), jnp.asarray(y, jnp.int32))
        losses.append(float(metrics["loss"]))
    return start, state, losses


def _check(state, losses, w, b, want_losses, steps):
    assert int(state.step) == steps
    np.testing.assert_allclose(losses, want_losses, rtol=1e-5)
    np.testing.assert_allclose(state.params["w"], w, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(state.params["b"], b, rtol=1e-4, atol=1e-6)


def test_one_sgd_step_is_params_minus_lr_times_gradient():
    lr, batches = 0.1, _batches(1)
    p, state, losses = _run_steps(optax.sgd(lr), batches)
    loss, gw, gb = _loss_and_grad(p["w"], p["b"], *batches[0])
    assert np.abs(lr * gw).max() > 1e-3  # the step is far above the tolerance
    _check(state, losses, p["w"] - lr * gw, p["b"] - lr * gb, [loss], 1)


def test_two_momentum_steps_match_heavy_ball_by_hand():
    lr, mu, batches = 0.1, 0.9, _batches(2)
    p, state, losses = _run_steps(optax.sgd(lr, momentum=mu), batches)
    w, b, vw, vb, want = p["w"], p["b"], 0.0, 0.0, []
    for x, y in batches:
        loss, gw, gb = _loss_and_grad(w, b, x, y)
        vw, vb = mu * vw + gw, mu * vb + gb  # v <- mu v + g;  p <- p - lr v
        w, b = w - lr * vw, b - lr * vb
        want.append(loss)
    _check(state, losses, w, b, want, 2)


def test_two_adam_steps_match_adam_by_hand():
    lr, b1, b2, eps, batches = 0.01, 0.9, 0.999, 1e-8, _batches(2)
    p, state, losses = _run_steps(optax.adam(lr, b1=b1, b2=b2, eps=eps), batches)
    theta = [p["w"], p["b"]]
    m, v, want = [0.0, 0.0], [0.0, 0.0], []
    for t, (x, y) in enumerate(batches, start=1):
        loss, *grads = _loss_and_grad(*theta, x, y)
        want.append(loss)
        for i, g in enumerate(grads):
            m[i] = b1 * m[i] + (1 - b1) * g
            v[i] = b2 * v[i] + (1 - b2) * g**2
            theta[i] = theta[i] - lr * (m[i] / (1 - b1**t)) / (np.sqrt(v[i] / (1 - b2**t)) + eps)
    _check(state, losses, *theta, want, 2)


# --- the order of the batches fit draws -----------------------------------------------------------------------------

N, BATCH, EPOCHS = 16, 8, 4
STEPS = N // BATCH


def _recorder() -> optax.GradientTransformation:
    """An optimiser that changes nothing and keeps every step's gradient in its state, row ``step``."""

    def init(params):
        return jnp.zeros((), jnp.int32), jax.tree.map(lambda p: jnp.zeros((STEPS * EPOCHS, *p.shape), p.dtype), params)

    def update(grads, opt_state, params=None):
        del params
        count, rows = opt_state
        rows = jax.tree.map(lambda r, g: r.at[count].set(g), rows, grads)
        return jax.tree.map(jnp.zeros_like, grads), (count + 1, rows)

    return optax.GradientTransformation(init, update)


def _batch_order(epochs: int = EPOCHS, seed: int = 0, **kw) -> list[tuple[frozenset[int], ...]]:
    """Per epoch, the examples of each of its steps, in step order, as ``fit`` drew them.

    Example ``i`` is the one-hot vector e_i and its target is 1; a linear unit with zero weights then has weight
    gradient -2/batch at exactly the examples of the batch, which the recording optimiser keeps."""
    model = Model("probe", nn.dense(1, w_init=nn.initializers.zeros), (N,), head="linear")
    x, y = np.eye(N, dtype=np.float32), np.ones((N, 1), np.float32)
    result = train.fit(
        model,
        x,
        y,
        optimizer=_recorder(),
        epochs=epochs,
        batch_size=BATCH,
        seed=seed,
        progress=False,
        log=lambda s: None,
        **kw,
    )
    count, rows = result.state.opt_state
    assert int(count) == STEPS * epochs
    grads = np.asarray(rows["w"])[: STEPS * epochs, :, 0]
    np.testing.assert_allclose(grads[grads != 0], -2.0 / BATCH, rtol=1e-6)
    steps = [frozenset(np.flatnonzero(g).tolist()) for g in grads]
    return [tuple(steps[e * STEPS : (e + 1) * STEPS]) for e in range(epochs)]


def test_fit_shuffles_every_epoch_afresh_and_reproducibly():
    orders = _batch_order()
    for order in orders:  # each epoch: every example once, in full batches
        assert [len(s) for s in order] == [BATCH] * STEPS
        assert sorted(i for s in order for i in s) == list(range(N))
    assert len(set(orders)) == EPOCHS, "two epochs drew the same batches in the same order"
    assert _batch_order() == orders  # the same seed gives the same orders
    assert _batch_order(seed=1) != orders


def test_resumed_fit_draws_the_uninterrupted_runs_batches(tmp_path):
    straight = _batch_order()
    first = _batch_order(epochs=1, workdir=tmp_path)
    resumed = _batch_order(workdir=tmp_path, resume=True)
    assert first == straight[:1] and resumed == straight


# --- survivors of the first mutation run (tests/mutate.py), each killed here ---------------------------------------


def test_conv_general_without_dilation_is_the_undilated_convolution():
    rng = np.random.default_rng(4)
    x = jnp.asarray(rng.standard_normal((2, 5, 6, 3)), jnp.float32)
    w = jnp.asarray(rng.standard_normal((3, 2, 3, 4)), jnp.float32)
    padding = ((1, 0), (0, 1))
    want = jax.lax.conv_general_dilated(
        x, w, (1, 2), padding, dimension_numbers=("NHWC", "HWIO", "NHWC"), precision="highest"
    )
    for strategy in ("auto", "im2col", "xla"):
        np.testing.assert_allclose(
            nn.conv_general(x, w, (1, 2), padding, strategy=strategy), want, rtol=1e-4, atol=1e-4
        )


def test_lecun_uniform_1998_is_symmetric_up_to_scale_over_fan_in():
    w = np.asarray(nn.initializers.lecun_uniform_1998()(jax.random.key(0), (5, 5, 1, 400)))
    bound = 2.4 / 25  # fan-in 5 * 5 * 1
    assert np.abs(w).max() <= bound
    assert w.min() < -0.99 * bound and w.max() > 0.99 * bound
    assert abs(w.mean()) < 0.03 * bound  # 10,000 draws: 5 standard errors


def test_fit_accepts_every_class_of_the_model_and_names_the_first_label_beyond():
    x = np.random.default_rng(5).standard_normal((12, 2)).astype(np.float32)
    quiet = {"optimizer": optax.sgd(0.01), "epochs": 1, "batch_size": 4, "progress": False, "log": lambda s: None}
    three = Model("three", nn.dense(3), (2,))  # softmax over 3 units: classes 0, 1, 2
    one_unit = Model("one_unit", nn.dense(1), (2,), head="sigmoid")  # one unit: classes 0, 1
    train.fit(three, x, np.arange(12) % 3, **quiet)
    train.fit(one_unit, x, np.arange(12) % 2, **quiet)
    with pytest.raises(ValueError, match=r"train_y\[3\] is 3, not a class of three \(0 to 2, 3 classes\)"):
        train.fit(three, x, np.arange(12) % 4, **quiet)
    with pytest.raises(ValueError, match=r"train_y\[2\] is 2, not a class of one_unit \(0 to 1, 2 classes\)"):
        train.fit(one_unit, x, np.arange(12) % 3, **quiet)


def test_prepare_passes_token_sequences_through_unchanged():
    tokens = np.arange(24, dtype=np.int32).reshape(4, 6) % 7
    raw = data.Dataset("tokens", tokens, tokens, tokens[:2], tokens[:2], 7)
    assert data.prepare(raw) is raw
    assert data.prepare(raw, input_shape=(6,)) is raw


def test_recording_init_reports_every_child_in_post_order():
    calls = []
    block = nn.serial(nn.dense(3, name="a"), nn.dense(2, name="b"), name="block")
    layer = nn.serial(block, nn.dense(1, name="c"))
    with nn.recording_init(lambda path, in_shape, out_shape, params, state: calls.append((path, in_shape, out_shape))):
        jax.eval_shape(lambda key: layer.init(key, (4,)), jax.random.key(0))
    assert calls == [
        (("block", "a"), (4,), (3,)),
        (("block", "b"), (3,), (2,)),
        (("block",), (4,), (2,)),
        (("c",), (2,), (1,)),
    ]


def test_max_pool_gradient_goes_to_the_first_maximum_of_each_window():
    x = jnp.asarray([[1.0, 1.0, 0.0, 5.0], [1.0, 0.0, 5.0, 2.0]]).reshape(1, 2, 4, 1)
    layer = nn.max_pool(2)
    y, _ = layer.apply({}, {}, x)
    np.testing.assert_array_equal(y.reshape(-1), [1.0, 5.0])
    grad = jax.grad(lambda x: jnp.sum(layer.apply({}, {}, x)[0] * jnp.asarray([2.0, 3.0]).reshape(1, 1, 2, 1)))(x)
    # ties go to the first maximum in row-major order: (0, 0) in the first window, (0, 3) in the second
    np.testing.assert_array_equal(grad.reshape(2, 4), [[2.0, 0.0, 0.0, 3.0], [0.0, 0.0, 0.0, 0.0]])


def _log_softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=-1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=-1, keepdims=True))


def test_auxiliary_classifier_loss_is_main_plus_weighted_auxiliary_cross_entropies():
    rng = np.random.default_rng(6)
    outputs, labels = rng.standard_normal((4, 3, 5)), rng.integers(0, 5, 4)
    ce = [-_log_softmax(outputs[:, h])[np.arange(4), labels] for h in range(3)]
    got = losses.auxiliary_classifier_loss(jnp.asarray(outputs, jnp.float32), jnp.asarray(labels), aux_weight=0.25)
    np.testing.assert_allclose(got, ce[0] + 0.25 * (ce[1] + ce[2]), rtol=1e-5)


def test_gaussian_log_density_sums_the_last_axis():
    rng = np.random.default_rng(7)
    z, mean, log_var = rng.standard_normal((3, 3, 4))
    want = np.sum(-0.5 * (np.log(2 * np.pi) + log_var + (z - mean) ** 2 / np.exp(log_var)), axis=-1)
    got = losses.gaussian_log_density(*(jnp.asarray(a, jnp.float32) for a in (z, mean, log_var)))
    np.testing.assert_allclose(got, want, rtol=1e-5)


def test_euclidean_distance_is_over_the_last_axis_and_finite_at_zero():
    rng = np.random.default_rng(8)
    a, b = rng.standard_normal((2, 2, 3, 4))
    got = losses.euclidean_distance(jnp.asarray(a, jnp.float32), jnp.asarray(b, jnp.float32))
    np.testing.assert_allclose(got, np.linalg.norm(a - b, axis=-1), rtol=1e-5)
    same = jnp.ones((2, 4))
    np.testing.assert_allclose(losses.euclidean_distance(same, same, eps=1e-4), 1e-2, rtol=1e-5)
    assert np.all(np.isfinite(jax.grad(lambda a: losses.euclidean_distance(a, same).sum())(same)))


def test_squared_distances_are_all_pairs():
    e = np.random.default_rng(9).standard_normal((4, 3))
    want = np.array([[np.sum((u - v) ** 2) for v in e] for u in e])
    np.testing.assert_allclose(losses.squared_distances(jnp.asarray(e, jnp.float32)), want, rtol=1e-5, atol=1e-6)


def test_bernoulli_nll_is_the_summed_binary_cross_entropy_per_example():
    rng = np.random.default_rng(10)
    logits, x = rng.standard_normal((2, 3, 4)), rng.uniform(0, 1, (2, 3, 4))
    p = 1 / (1 + np.exp(-logits))
    want = -np.sum(x * np.log(p) + (1 - x) * np.log(1 - p), axis=(1, 2))
    np.testing.assert_allclose(
        losses.bernoulli_nll(jnp.asarray(logits, jnp.float32), jnp.asarray(x, jnp.float32)), want, rtol=1e-5
    )


@pytest.mark.parametrize("size", [3, 4, 5])
def test_lrn_sums_the_documented_band_of_channels(size):
    x = np.random.default_rng(11).standard_normal((2, 7))
    alpha, beta, k = 0.1, 0.75, 2.0
    want = np.empty_like(x)
    for i in range(7):  # a_j for j from i - size//2 to i + (size-1)//2, clipped to the channels
        band = x[:, max(0, i - size // 2) : min(7, i + (size - 1) // 2 + 1)]
        want[:, i] = x[:, i] / (k + alpha * np.sum(band**2, axis=1)) ** beta
    y, _ = nn.lrn(size, alpha, beta, k).apply({}, {}, jnp.asarray(x, jnp.float32))
    np.testing.assert_allclose(y, want, rtol=1e-5)


def test_fit_names_the_training_or_test_labels_that_do_not_match():
    x = np.zeros((12, 2), np.float32)
    y = np.zeros(12, np.int32)
    model = Model("two", nn.dense(2), (2,))
    kw = {"optimizer": optax.sgd(0.1), "epochs": 1, "batch_size": 4, "progress": False, "log": lambda s: None}
    with pytest.raises(ValueError, match=r"need as many labels as training examples; got 12 examples and 11 labels"):
        train.fit(model, x, y[:11], **kw)
    with pytest.raises(ValueError, match=r"need as many test labels as test examples; got 12 examples and 10 labels"):
        train.fit(model, x, y, x, y[:10], **kw)


@pytest.mark.parametrize("batch", [1, 3])
def test_avg_pool_same_padding_averages_only_the_real_entries(batch):
    x = np.random.default_rng(12).standard_normal((batch, 4, 5, 2))
    want = np.empty_like(x)
    for i in range(4):
        for j in range(5):  # 3x3 windows centred on (i, j), cut at the border: padding is not counted
            want[:, i, j] = x[:, max(0, i - 1) : i + 2, max(0, j - 1) : j + 2].mean(axis=(1, 2))
    y, _ = nn.avg_pool(3, stride=1, padding="SAME").apply({}, {}, jnp.asarray(x, jnp.float32))
    np.testing.assert_allclose(y, want, rtol=1e-5, atol=1e-6)
