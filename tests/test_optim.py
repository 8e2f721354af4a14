"""The optimisers behind --optimizer follow the classic update rules they are named after."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jaxnets.train import OPTIMIZERS, make_optimizer

A = np.array([[3.0, 0.5], [0.5, 1.0]])


def grad(w: np.ndarray) -> np.ndarray:
    """Gradient of the quadratic 0.5 w^T A w - sum(w)."""
    return A @ w - 1.0


def run_optax(opt: optax.GradientTransformation, steps: int) -> np.ndarray:
    w = jnp.array([1.0, -2.0])
    state = opt.init(w)
    for _ in range(steps):
        updates, state = opt.update(jnp.asarray(grad(np.asarray(w))), state, w)
        w = optax.apply_updates(w, updates)
    return np.asarray(w)


def test_momentum_is_the_classic_velocity_rule():
    lr, mu, w, v = 0.1, 0.9, np.array([1.0, -2.0]), np.zeros(2)
    for _ in range(25):
        v = mu * v + lr * grad(w)  # V = mu * V + lr * grad
        w = w - v  # W = W - V
    np.testing.assert_allclose(run_optax(make_optimizer("momentum", lr, momentum=mu), 25), w, rtol=1e-5)


def test_sgd_is_plain_gradient_descent():
    w = np.array([1.0, -2.0])
    for _ in range(25):
        w = w - 0.1 * grad(w)
    np.testing.assert_allclose(run_optax(make_optimizer("sgd", 0.1), 25), w, rtol=1e-5)


def test_adagrad_divides_by_the_root_of_the_summed_squared_gradients():
    lr, w = 0.5, np.array([1.0, -2.0])
    g2 = np.full(2, 0.1)  # optax's default initial accumulator
    for _ in range(25):
        g = grad(w)
        g2 = g2 + g * g
        w = w - lr * g / np.sqrt(g2 + 1e-7)
    np.testing.assert_allclose(run_optax(make_optimizer("adagrad", lr), 25), w, rtol=1e-4)


@pytest.mark.parametrize("name", OPTIMIZERS)
def test_every_optimizer_reduces_the_loss(name):
    def loss(w):
        return 0.5 * w @ A @ w - w.sum()

    start = np.array([1.0, -2.0])
    assert loss(run_optax(make_optimizer(name, 0.05), 50)) < loss(start)


def test_unknown_optimizer_is_one_clear_error():
    with pytest.raises(ValueError, match="unknown optimizer 'lbfgs'; choose one of sgd"):
        make_optimizer("lbfgs", 0.1)
