"""The classic results: the perceptron rule on AND/OR/XOR, an MLP solving XOR, linear collapse without
non-linearities, and backpropagation written out by hand."""

from __future__ import annotations

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from gradcheck import x64
from helpers import random_like

import jaxnets
from jaxnets import losses
from jaxnets.models import mlp, perceptron, perceptron_rule

X = jnp.asarray([[0, 0], [0, 1], [1, 0], [1, 1]], jnp.float32)
GATES = {"AND": [0, 0, 0, 1], "OR": [0, 1, 1, 1], "XOR": [0, 1, 1, 0]}
PERCEPTRON = perceptron(input_shape=(2,), num_classes=2)


@jax.jit
def _perceptron_epoch(params, x, labels):
    """One online epoch: the perceptron rule applied example by example, then the accuracy after it."""

    def step(p, example):
        xi, ti = example
        return perceptron_rule(p, xi[None], ti[None]), None

    params, _ = jax.lax.scan(step, params, (x, labels))
    out, _ = PERCEPTRON.apply(params, {}, x)
    return params, losses.accuracy(out, labels, head=PERCEPTRON.head)


def _train_perceptron(labels, epochs):
    params, _ = PERCEPTRON.init(jax.random.key(0))
    accuracies = []
    for _ in range(epochs):
        params, acc = _perceptron_epoch(params, X, labels)
        accuracies.append(float(acc))
    return params, accuracies


@pytest.mark.parametrize("gate", ["AND", "OR"])
def test_perceptron_rule_learns_and_or(gate):
    labels = jnp.asarray(GATES[gate])
    params, accs = _train_perceptron(labels, epochs=20)
    first = accs.index(1.0)  # raises if it never reached 100 %
    assert first < 10, accs
    assert all(a == 1.0 for a in accs[first:])  # and once it has, it stays there: no more updates
    out, _ = PERCEPTRON.apply(params, {}, X)
    np.testing.assert_array_equal(losses.predict("perceptron", out), GATES[gate])
    stepped, _ = _perceptron_epoch(params, X, labels)
    for k in ("w", "b"):
        np.testing.assert_array_equal(stepped["out"][k], params["out"][k])


def test_perceptron_rule_learns_every_separable_two_input_function_and_never_xor():
    """Of the 16 boolean functions of two inputs, exactly XOR and XNOR are out of the perceptron's reach."""
    unlearned = []
    for bits in itertools.product([0, 1], repeat=4):
        _, accs = _train_perceptron(jnp.asarray(bits), epochs=25)
        if max(accs) < 1.0:
            unlearned.append(bits)
            assert max(accs) <= 0.75
    assert sorted(unlearned) == [(0, 1, 1, 0), (1, 0, 0, 1)]


def test_perceptron_never_separates_xor():
    labels = jnp.asarray(GATES["XOR"])
    _, accs = _train_perceptron(labels, epochs=200)
    assert max(accs) <= 0.75 and 1.0 not in accs


def test_no_threshold_unit_gets_xor_more_than_three_quarters_right():
    """XOR needs b <= 0, w1 + b > 0, w2 + b > 0 and w1 + w2 + b <= 0; adding the middle two gives w1 + w2 + b > -b >= 0,
    contradicting the last. So every (w, b) misclassifies at least one of the four points: accuracy <= 3/4.

    The same, exhaustively over a grid of weights and biases (every dichotomy of the four corners that a threshold
    unit can make is made by some grid point, since small integer weights realise all 14 of them).
    """
    g = np.arange(-3.0, 3.01, 0.5)
    w1, w2, b = (a.ravel() for a in np.meshgrid(g, g, g))
    z = np.asarray(X) @ np.stack([w1, w2]) + b  # (4 points, grid)
    fired = (z > 0).astype(int)
    xor_acc = (fired == np.asarray(GATES["XOR"])[:, None]).mean(axis=0)
    assert xor_acc.max() == 0.75
    realised = {tuple(col) for col in fired.T}
    assert len(realised) == 14 and (0, 1, 1, 0) not in realised and (1, 0, 0, 1) not in realised
    # the model's own threshold units agree with this enumeration, on a random sample of the grid
    for i in np.random.default_rng(0).choice(len(b), 8, replace=False):
        params = {"out": {"w": jnp.asarray([[w1[i]], [w2[i]]], jnp.float32), "b": jnp.asarray([b[i]], jnp.float32)}}
        out, _ = PERCEPTRON.apply(params, {}, X)
        np.testing.assert_array_equal(losses.predict("perceptron", out), fired[:, i])


def test_sgd_on_the_perceptron_criterion_is_the_perceptron_rule():
    """Batch training with optax.sgd on the summed 'perceptron' head loss follows the perceptron rule's trajectory."""
    labels = jnp.asarray(GATES["OR"])
    loss_fn = losses.loss_for(PERCEPTRON.head)
    rng = np.random.default_rng(0)
    start = {
        "out": {
            "w": jnp.asarray(rng.standard_normal((2, 1)), jnp.float32),
            "b": jnp.asarray(rng.standard_normal(1), jnp.float32),
        }
    }
    opt = optax.sgd(0.25)

    def loss(p):
        return jnp.sum(loss_fn(PERCEPTRON.apply(p, {}, X)[0], labels))

    sgd, rule, opt_state, moved = start, start, opt.init(start), 0
    for _ in range(6):
        updates, opt_state = opt.update(jax.grad(loss)(sgd), opt_state, sgd)
        sgd = optax.apply_updates(sgd, updates)
        new_rule = perceptron_rule(rule, X, labels, lr=0.25)
        moved += int(not np.array_equal(new_rule["out"]["w"], rule["out"]["w"]))
        rule = new_rule
        for k in ("w", "b"):
            np.testing.assert_allclose(sgd["out"][k], rule["out"][k], rtol=1e-6, atol=1e-6)
    assert moved >= 1


def test_mlp_with_one_hidden_layer_learns_xor():
    model = mlp(input_shape=(2,), num_classes=2, hidden=(4,), activation="tanh")
    labels = jnp.asarray(GATES["XOR"])
    params, state = model.init(jax.random.key(0))
    opt = optax.adam(0.05)
    loss_fn = losses.loss_for(model.head)

    def loss(p):
        return jnp.mean(loss_fn(model.apply(p, state, X)[0], labels))

    @jax.jit
    def train(params):
        def step(carry, _):
            p, s = carry
            updates, s = opt.update(jax.grad(loss)(p), s, p)
            return (optax.apply_updates(p, updates), s), None

        (params, _), _ = jax.lax.scan(step, (params, opt.init(params)), None, length=500)
        return params

    out0, _ = model.apply(params, state, X)
    assert losses.accuracy(out0, labels) < 1.0  # not solved by the initialisation
    params = train(params)
    out, _ = model.apply(params, state, X)
    assert float(losses.accuracy(out, labels, head=model.head)) == 1.0
    assert float(loss(params)) < 0.05


def _compose_affine(params, names):
    """Compose the affine maps x @ w + b of the named dense layers into one (w, b)."""
    w, b = None, None
    for n in names:
        wi, bi = np.asarray(params[n]["w"], np.float64), np.asarray(params[n]["b"], np.float64)
        w, b = (wi, bi) if w is None else (w @ wi, b @ wi + bi)
    return w, b


def test_deep_network_with_identity_activations_is_one_linear_map():
    model = mlp(input_shape=(5,), num_classes=3, hidden=(6, 2, 7), activation="identity", head="linear")
    shapes, _ = jax.eval_shape(model.init, jax.random.key(2))
    rng = np.random.default_rng(2)
    params = random_like(shapes, rng)
    w, b = _compose_affine(params, ["hidden1", "hidden2", "hidden3", "out"])
    x = rng.standard_normal((16, 5)).astype(np.float32)
    out, _ = jax.jit(model.apply)(params, {}, jnp.asarray(x))
    np.testing.assert_allclose(out, x @ w + b, rtol=1e-5, atol=1e-4)
    assert np.linalg.matrix_rank(w) == 2  # and the 2-unit bottleneck caps the collapsed map's rank

    # with a non-linearity it is no longer affine: f(x) + f(y) != f(x + y) + f(0)
    tanh_model = mlp(input_shape=(5,), num_classes=3, hidden=(6, 2, 7), activation="tanh", head="linear")

    def f(v):
        return np.asarray(jax.jit(tanh_model.apply)(params, {}, jnp.asarray(v))[0])

    zero = np.zeros_like(x[:8])
    assert np.abs(f(x[:8]) + f(x[8:]) - f(x[:8] + x[8:]) - f(zero)).max() > 1e-2


_DERIVATIVES = {
    "sigmoid": lambda z: np.exp(-z) / (1 + np.exp(-z)) ** 2,
    "tanh": lambda z: 1 - np.tanh(z) ** 2,
    "relu": lambda z: (z > 0).astype(z.dtype),
}


@pytest.mark.parametrize("act", sorted(_DERIVATIVES))
def test_hand_written_backprop_matches_jax_grad(act):
    """Backpropagation by the chain rule for a 2-layer MLP with a softmax cross-entropy head, in float64:

    delta_out = dL/dz2 = (softmax(z2) - onehot(y)) / N,   delta_hidden = (delta_out @ W2^T) * f'(z1),
    dW2 = a1^T delta_out,  db2 = sum delta_out,  dW1 = x^T delta_hidden,  db1 = sum delta_hidden.
    """
    model = jaxnets.build("mlp", (3,), 4, hidden=(5,), activation=act)
    rng = np.random.default_rng(3)
    with x64():
        params = random_like(jax.eval_shape(model.init, jax.random.key(3))[0], rng, dtype=jnp.float64)
        state = {}
        x = rng.standard_normal((7, 3))
        y = rng.integers(0, 4, 7)

        def loss(p):
            return jnp.mean(losses.softmax_cross_entropy(model.apply(p, state, jnp.asarray(x))[0], jnp.asarray(y)))

        g = jax.grad(loss)(params)
        assert g["out"]["w"].dtype == jnp.float64

    w1, b1 = np.asarray(params["hidden1"]["w"]), np.asarray(params["hidden1"]["b"])
    w2, b2 = np.asarray(params["out"]["w"]), np.asarray(params["out"]["b"])
    f = {"sigmoid": lambda z: 1 / (1 + np.exp(-z)), "tanh": np.tanh, "relu": lambda z: np.maximum(z, 0)}[act]
    z1 = x @ w1 + b1
    a1 = f(z1)
    z2 = a1 @ w2 + b2
    p = np.exp(z2 - z2.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    delta_out = (p - np.eye(4)[y]) / len(x)
    delta_hidden = (delta_out @ w2.T) * np.asarray(_DERIVATIVES[act](z1))
    expected = {
        "out": {"w": a1.T @ delta_out, "b": delta_out.sum(0)},
        "hidden1": {"w": x.T @ delta_hidden, "b": delta_hidden.sum(0)},
    }
    for layer, grads in expected.items():
        for k, v in grads.items():
            assert np.abs(v).max() > 1e-6
            np.testing.assert_allclose(g[layer][k], v, rtol=1e-10, atol=1e-12, err_msg=f"{layer}/{k}")
