"""DANN: the gradient-reversal layer (identity forward, -lambda times the gradient backward), the paper's schedules,
MNIST-M generation and the two-moons domains, and the domain-adversarial step through ``fit``: the domain classifier
is pushed toward chance while the label classifier trains."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from gradcheck import check_grad, x64

from jaxnets import models, nn, train
from jaxnets.data import make_mnist_m, rotate, two_moons
from jaxnets.train import dann_step


@pytest.mark.parametrize("scale", [1.0, 0.25, 3.0])
def test_gradient_reversal_is_identity_forward_and_minus_lambda_backward(scale):
    x = jnp.array([0.5, -2.0, 3.0])
    w = jnp.array([1.0, 2.0, -4.0])
    np.testing.assert_array_equal(nn.reverse_gradient(x, scale), x)

    def g(v):  # a non-linear function after the reversal: its true gradient is scaled by -scale
        return jnp.sum(w * jnp.tanh(v) ** 2)

    reversed_grad = jax.grad(lambda v: g(nn.reverse_gradient(v, scale)))(x)
    np.testing.assert_allclose(reversed_grad, -scale * jax.grad(g)(x), rtol=1e-6)
    # under jit with a traced scale (the schedule's lambda), and the scale itself gets no gradient
    grads = jax.jit(jax.grad(lambda v, s: g(nn.reverse_gradient(v, s)), argnums=(0, 1)))(x, jnp.float32(scale))
    np.testing.assert_allclose(grads[0], -scale * jax.grad(g)(x), rtol=1e-6)
    assert float(grads[1]) == 0.0


def test_gradient_reversal_layer_reverses_only_what_is_below_it():
    layer = nn.serial(nn.dense(3, name="below"), nn.gradient_reversal(0.5), nn.dense(1, name="above"))
    params, state, _ = layer.init(jax.random.PRNGKey(0), (2,))
    plain = nn.serial(nn.dense(3, name="below"), nn.dense(1, name="above"))
    x = jnp.array([[1.0, -1.0], [0.5, 2.0]])

    def loss(net, p):
        return jnp.sum(net.apply(p, state, x)[0] ** 2)

    assert "below" in params and "above" in params
    g_rev, g = jax.grad(functools.partial(loss, layer))(params), jax.grad(functools.partial(loss, plain))(params)
    np.testing.assert_allclose(g_rev["above"]["w"], g["above"]["w"], rtol=1e-6)
    np.testing.assert_allclose(g_rev["below"]["w"], -0.5 * g["below"]["w"], rtol=1e-6)


def test_schedules_of_the_paper():
    np.testing.assert_allclose(models.dann_lambda(0.0), 0.0, atol=1e-7)
    np.testing.assert_allclose(models.dann_lambda(1.0), 2 / (1 + np.exp(-10)) - 1, rtol=1e-6)
    assert np.all(np.diff(np.asarray(models.dann_lambda(jnp.linspace(0, 1, 11)))) > 0)
    np.testing.assert_allclose(models.dann_learning_rate(0.0), 0.01)
    np.testing.assert_allclose(models.dann_learning_rate(1.0), 0.01 / 11**0.75, rtol=1e-6)


@pytest.mark.parametrize("source", ["textures", "photos"])
def test_mnist_m_blends_by_absolute_difference(source):
    if source == "photos":
        pytest.importorskip("skimage", reason="the 'photos' source needs scikit-image")
    blank, full = np.zeros((6, 28, 28), np.uint8), np.full((6, 28, 28, 1), 255, np.uint8)
    crops = make_mnist_m(blank, seed=3, source=source)  # |crop - 0| = the crop itself
    assert crops.shape == (6, 28, 28, 3) and crops.dtype == np.float32
    whole = make_mnist_m(full, seed=3, source=source)  # |crop - 1| = 1 - crop
    np.testing.assert_allclose(whole, 1.0 - crops, atol=1e-6)
    np.testing.assert_array_equal(make_mnist_m(blank, seed=3, source=source), crops)  # seeded
    assert not np.array_equal(make_mnist_m(blank, seed=4, source=source), crops)
    assert crops.std() > 0.02  # coloured backgrounds, not a constant


def test_mnist_m_rejects_bad_input():
    with pytest.raises(ValueError, match="unknown MNIST-M background source 'bsds'"):
        make_mnist_m(np.zeros((1, 28, 28)), source="bsds")
    with pytest.raises(ValueError, match="must lie in \\[0, 1\\]"):
        make_mnist_m(np.full((1, 28, 28), 2.0))


def test_two_moons_and_rotation():
    x, y = two_moons(200, seed=0)
    assert x.shape == (200, 2) and np.bincount(y).tolist() == [100, 100]
    r = rotate(x, 90.0)
    np.testing.assert_allclose(r, np.stack([-x[:, 1], x[:, 0]], 1), atol=1e-6)
    np.testing.assert_allclose(np.linalg.norm(rotate(x, 35.0), axis=1), np.linalg.norm(x, axis=1), rtol=1e-5)


def test_dann_model_parts_and_shapes():
    model = models.build("dann", input_shape=(28, 28, 3), num_classes=10)
    params, state = jax.jit(model.init)(jax.random.PRNGKey(0))
    assert set(params) == {"features", "label", "domain"}
    logits, _ = model.apply(params, state, jnp.zeros((2, 28, 28, 3)))
    assert logits.shape == (2, 10)
    with pytest.raises(ValueError, match="is not a domain-adversarial network"):
        models.domain_parts(models.build("mlp", input_shape=(2,), num_classes=2))


@functools.cache
def _moons_run(adapt: bool) -> train.FitResult:
    xs, ys = two_moons(300, seed=0)
    xt = rotate(two_moons(300, seed=1)[0], 60.0)  # (more than the paper's 35 degrees: a clear gap in 600 steps)
    model = models.dann((2,), 2, hidden=(32, 32), domain_hidden=(32,))
    epochs = 100
    total = epochs * (300 // 50)
    step = dann_step(
        model, optax.sgd(lambda s: models.dann_learning_rate(s / total, 0.1), momentum=0.9), total, adapt=adapt
    )
    return train.fit(
        step,
        {"source": xs, "target": xt},
        ys,
        epochs=epochs,
        batch_size=50,
        seed=0,
        shardings=None,
        progress=False,
        log=lambda s: None,
    )


def test_dann_pushes_the_domain_classifier_toward_chance_while_the_labels_train():
    """Same network, data and steps: with the reversal (lambda rising to 1) the domain classifier ends nearer chance
    (0.5) than in the source-only run (lambda = 0), while the label classifier still fits the source."""
    source_only, adapted = _moons_run(False).history[-1], _moons_run(True).history[-1]
    assert adapted["train_lambda"] > 0.99 and source_only["train_lambda"] == 0.0
    assert adapted["train_source_accuracy"] > 0.8
    assert adapted["train_domain_accuracy"] < source_only["train_domain_accuracy"] - 0.05, (source_only, adapted)
    assert abs(adapted["train_domain_accuracy"] - 0.5) < 0.1


def test_dann_label_path_gradients_match_finite_differences():
    """The classifier's loss through the features and label head, in float64 (the domain head's reversed gradient is
    checked above against the unreversed one)."""
    model = models.dann((3,), 2, hidden=(4,), label_hidden=(3,), domain_hidden=(3,))
    rng = np.random.default_rng(0)
    with x64():
        params, state = model.init(jax.random.PRNGKey(0))
        params = jax.tree.map(lambda a: jnp.asarray(rng.standard_normal(a.shape)), params)
        x, y = jnp.asarray(rng.standard_normal((5, 3))), jnp.array([0, 1, 1, 0, 1])
        label = {k: params[k] for k in ("features", "label")}

        def loss(p):
            return jnp.mean(model.metrics({**params, **p}, state, x, y)[0]["loss"])

        assert check_grad(loss, label) > 0
