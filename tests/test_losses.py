"""Losses and metrics against their textbook formulas, including extreme logits."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxnets import losses


def test_bce_from_logits_is_finite_and_exact_for_huge_logits():
    logits = jnp.asarray([[1000.0], [-1000.0], [1000.0], [-1000.0], [0.0]])
    labels = jnp.asarray([1, 0, 0, 1, 1])
    loss = losses.binary_cross_entropy_with_logits(logits, labels)
    assert bool(jnp.all(jnp.isfinite(loss)))
    # confident and right: 0; confident and wrong: |logit|; undecided: log 2
    np.testing.assert_allclose(loss, [0.0, 0.0, 1000.0, 1000.0, np.log(2.0)], rtol=1e-6, atol=1e-6)
    grad = jax.grad(lambda z: jnp.sum(losses.binary_cross_entropy_with_logits(z, labels)))(logits)
    assert bool(jnp.all(jnp.isfinite(grad)))
    np.testing.assert_allclose(grad[:, 0], [0.0, 0.0, 1.0, -1.0, -0.5], atol=1e-6)  # sigmoid(z) - t


def test_bce_matches_the_formula_for_moderate_logits():
    rng = np.random.default_rng(0)
    z = rng.standard_normal((6, 3)) * 3
    t = rng.integers(0, 2, (6, 3))
    p = 1 / (1 + np.exp(-z))
    expected = -(t * np.log(p) + (1 - t) * np.log(1 - p)).mean(axis=1)
    np.testing.assert_allclose(
        losses.binary_cross_entropy_with_logits(jnp.asarray(z, jnp.float32), jnp.asarray(t)), expected, rtol=1e-5
    )


def test_softmax_cross_entropy_is_minus_log_softmax_at_the_label():
    rng = np.random.default_rng(1)
    z = rng.standard_normal((5, 4)).astype(np.float32) * 4
    y = rng.integers(0, 4, 5)
    logp = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    np.testing.assert_allclose(
        losses.softmax_cross_entropy(jnp.asarray(z), jnp.asarray(y)), -logp[np.arange(5), y], rtol=1e-5
    )
    big = jnp.asarray([[1000.0, -1000.0, 0.0]])
    np.testing.assert_allclose(losses.softmax_cross_entropy(big, jnp.asarray([1])), [2000.0], rtol=1e-6)
    np.testing.assert_allclose(losses.softmax_cross_entropy(big, jnp.asarray([0])), [0.0], atol=1e-6)


def test_mean_squared_error_is_per_example():
    pred = jnp.asarray([[1.0, 2.0], [0.0, 0.0], [3.0, -1.0]])
    target = jnp.asarray([[1.0, 0.0], [1.0, 1.0], [0.0, 0.0]])
    np.testing.assert_allclose(losses.mean_squared_error(pred, target), [2.0, 1.0, 5.0])
    # over all non-batch axes
    np.testing.assert_allclose(losses.mean_squared_error(jnp.ones((2, 2, 3)), jnp.zeros((2, 2, 3))), [1.0, 1.0])


def test_linear_head_regresses_onto_one_hot_targets():
    out = jnp.asarray([[0.0, 1.0, 0.0], [0.5, 0.5, 0.0]])
    np.testing.assert_allclose(losses.loss_for("linear")(out, jnp.asarray([1, 0])), [0.0, (0.25 + 0.25) / 3])
    np.testing.assert_allclose(
        losses.loss_for("linear")(jnp.asarray([[0.2], [0.9]]), jnp.asarray([0, 1])), [0.04, 0.01], rtol=1e-5
    )


def test_perceptron_criterion_values():
    z = jnp.asarray([[2.0], [-1.0], [0.5], [-3.0]])
    t = jnp.asarray([1, 1, 0, 0])
    # correct examples cost nothing; a missed positive costs -z, a false positive costs z
    np.testing.assert_allclose(losses.perceptron_criterion(z, t), [0.0, 1.0, 0.5, 0.0])


def test_accuracy_and_predict():
    logits = jnp.asarray([[0.1, 2.0, -1.0], [3.0, 0.0, 0.0], [0.0, 0.0, 5.0], [1.0, 0.0, 0.0]])
    np.testing.assert_allclose(losses.accuracy(logits, jnp.asarray([1, 0, 2, 2])), 0.75)
    one = jnp.asarray([[0.3], [-0.2], [0.7]])
    np.testing.assert_array_equal(losses.predict("sigmoid", one), [1, 0, 1])  # logits threshold at 0
    np.testing.assert_array_equal(losses.predict("linear", one), [0, 0, 1])  # regression outputs at 0.5
    np.testing.assert_allclose(losses.accuracy(one, jnp.asarray([1, 0, 0]), head="sigmoid"), 2 / 3, rtol=1e-6)


def test_unknown_head():
    with pytest.raises(ValueError, match="unknown output head 'hinge'; choose one of") as err:
        losses.loss_for("hinge")
    assert "\n" not in str(err.value)
