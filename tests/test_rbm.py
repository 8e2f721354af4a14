"""The RBM: free energy and conditionals against brute-force enumeration, CD-1's surrogate gradient against the
explicit CD-1 update, finite differences, training on tiny data, greedy pretraining into a fine-tunable sigmoid MLP,
and per-layer gradient norms."""

from __future__ import annotations

import itertools
import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from gradcheck import check_grad, x64

import jaxnets
from jaxnets import analysis, losses, models, train


def small_params(visible: int = 5, hidden: int = 3, seed: int = 0, dtype=np.float32) -> dict:
    rng = np.random.default_rng(seed)
    return {
        "w": jnp.asarray(rng.standard_normal((visible, hidden)).astype(dtype)),
        "b": jnp.asarray(rng.standard_normal(hidden).astype(dtype) * 0.5),
        "b_visible": jnp.asarray(rng.standard_normal(visible).astype(dtype) * 0.5),
    }


def binary_data(n: int = 256, d: int = 16, seed: int = 0) -> np.ndarray:
    """Two binary prototypes with 5% of the bits flipped."""
    rng = np.random.default_rng(seed)
    protos = rng.random((2, d)) < 0.5
    labels = rng.integers(0, 2, n)
    return (protos[labels] ^ (rng.random((n, d)) < 0.05)).astype(np.float32), labels.astype(np.int32)


def energy(p, v, h):
    return -(v @ p["b_visible"]) - (h @ p["b"]) - v @ p["w"] @ h


def test_free_energy_and_conditionals_by_enumeration():
    p = jax.tree.map(np.asarray, small_params(4, 3))
    hs = np.array(list(itertools.product([0.0, 1.0], repeat=3)))
    for v in itertools.product([0.0, 1.0], repeat=4):
        v = np.array(v)
        weights = np.array([np.exp(-energy(p, v, h)) for h in hs])
        assert float(losses.free_energy(p, v[None])[0]) == pytest.approx(-np.log(weights.sum()), rel=1e-5)
        p_h = (weights[:, None] * hs).sum(0) / weights.sum()  # p(h_j = 1 | v) by summing the joint
        np.testing.assert_allclose(models.hidden_probs(p, v[None])[0], p_h, rtol=1e-5)
    h = np.array([1.0, 0.0, 1.0])
    vs = np.array(list(itertools.product([0.0, 1.0], repeat=4)))
    weights = np.array([np.exp(-energy(p, v, h)) for v in vs])
    p_v = (weights[:, None] * vs).sum(0) / weights.sum()
    np.testing.assert_allclose(jax.nn.sigmoid(models.visible_logits(p, h[None]))[0], p_v, rtol=1e-5)


def test_cd1_surrogate_gradient_is_the_cd1_update():
    """jax.grad of mean F(v0) - F(stop_gradient(v1)) is minus <v h>_data - <v h>_recon, with the same samples."""
    p = small_params(6, 4)
    v0 = jnp.asarray(binary_data(32, 6)[0])
    key = jax.random.key(3)

    @jax.jit
    def everything(p, v0):
        grad = jax.grad(lambda q: jnp.mean(models.cd_surrogate(q, v0, key)))(p)
        v1 = models.gibbs_chain(p, v0, key)  # the same key gives the same negative sample
        vk = models.gibbs_chain(p, v0, key, k=3, sample_visible=False)  # CD-3 with mean-field visibles
        grad3 = jax.grad(lambda q: jnp.mean(models.cd_surrogate(q, v0, key, 3, False)))(p)
        return grad, v1, models.cd_update(p, v0, v1), vk, grad3, models.cd_update(p, v0, vk)

    grad, v1, update, vk, grad3, update3 = jax.device_get(everything(p, v0))
    p, v0 = jax.device_get((p, v0))
    assert set(np.unique(v1)) <= {0.0, 1.0} and not np.array_equal(v1, v0)
    sigmoid = lambda z: 1 / (1 + np.exp(-z))  # noqa: E731
    h0, h1 = sigmoid(v0 @ p["w"] + p["b"]), sigmoid(v1 @ p["w"] + p["b"])
    by_hand = {"w": (v0.T @ h0 - v1.T @ h1) / 32, "b": (h0 - h1).mean(0), "b_visible": (v0 - v1).mean(0)}
    for k in by_hand:
        np.testing.assert_allclose(-grad[k], by_hand[k], rtol=1e-4, atol=1e-6)
        np.testing.assert_allclose(update[k], by_hand[k], rtol=1e-4, atol=1e-6)
        np.testing.assert_allclose(-grad3[k], update3[k], rtol=1e-4, atol=1e-6)
    assert vk.min() > 0 and vk.max() < 1


def test_surrogate_gradient_matches_finite_differences():
    """Through the model's objective: for a fixed key the negative sample is fixed, and the loss is smooth."""
    model = jaxnets.build("rbm", (7,), hidden=4)
    with x64():
        p = small_params(7, 4, dtype=np.float64)
        v0 = jnp.asarray(binary_data(8, 7)[0], jnp.float64)

        def loss(q):
            metrics, _ = model.metrics({"rbm": q}, {}, v0, jnp.zeros(8, jnp.int32), key=jax.random.key(1), train=True)
            return jnp.mean(metrics["loss"])

        assert check_grad(loss, p) > 0


def test_rbm_model_shapes_and_metrics():
    model = jaxnets.build("rbm", (28, 28, 1), 10)
    params, state = jax.eval_shape(model.init, jax.random.key(0))
    assert jax.tree.map(lambda a: a.shape, params) == {"rbm": {"w": (784, 500), "b": (500,), "b_visible": (784,)}}
    x = jax.ShapeDtypeStruct((3, 28, 28, 1), jnp.float32)
    out = jax.eval_shape(lambda p, s, x: model.apply(p, s, x)[0], params, state, x)
    metrics = jax.eval_shape(lambda p, s, x: model.metrics(p, s, x, jnp.zeros(3, jnp.int32))[0], params, state, x)
    assert out.shape == (3, 28, 28, 1)
    assert {k: v.shape for k, v in metrics.items()} == {"loss": (3,), "squared_error": (3,), "free_energy": (3,)}
    with pytest.raises(ValueError, match="k >= 1"):
        jaxnets.build("rbm", k=0)


def test_cd1_training_lowers_reconstruction_error_and_free_energy_of_the_data():
    x, _ = binary_data(256, 16)
    model = jaxnets.build("rbm", (16,), hidden=8)
    result = train.fit(
        model,
        x,
        np.zeros(len(x), np.int32),
        optimizer=optax.sgd(0.1, momentum=0.5),
        epochs=10,
        batch_size=16,
        seed=0,
        progress=False,
        log=lambda _: None,
    )
    first, last = result.history[0], result.history[-1]
    assert last["train_squared_error"] < 0.5 * first["train_squared_error"], (first, last)
    assert last["train_free_energy"] < first["train_free_energy"] - 1.0


def test_pretrain_stack_initialises_a_sigmoid_mlp_that_fit_fine_tunes():
    """Greedy pretraining, then bench/vanishing_pretraining.py's measurement (the README's table) on its stack: the
    pretrained sigmoid network is fine-tuned by fit next to the random sigmoid and ReLU ones."""
    x, y = binary_data(256, 16)
    lines = []
    stack = train.pretrain_stack((8, 6), x, epochs=5, batch_size=16, lr=0.5, seed=0, log=lines.append)
    assert list(stack) == ["hidden1", "hidden2"] and len(lines) == 2 and "rbm 1 (16-8)" in lines[0]
    assert stack["hidden1"]["w"].shape == (16, 8) and stack["hidden2"]["w"].shape == (8, 6)
    base = jaxnets.build("mlp", (16,), 2, hidden=(8, 6), activation="sigmoid")
    params, _ = models.with_initial_params(base, stack).init(jax.random.key(0))
    for name in stack:
        for k in ("w", "b"):
            np.testing.assert_array_equal(params[name][k], stack[name][k])
    assert params["out"]["w"].shape == (6, 2)  # the output layer keeps its own initialisation
    with pytest.raises(ValueError, match="shape"):
        models.with_initial_params(base, {"hidden1": {"w": jnp.zeros((3, 8))}}).init(jax.random.key(0))
    with pytest.raises(ValueError, match="not among"):
        models.with_initial_params(base, {"hidden9": {"w": jnp.zeros((3, 8))}}).init(jax.random.key(0))

    sys.path.insert(0, str(Path(__file__).parents[1] / "bench"))
    import vanishing_pretraining as bench

    results = bench.compare(
        x, y, x, y, depth=2, hidden=(8, 6), epochs=1, lr=0.1, batch_size=16, stack=stack, log=lambda _: None
    )
    assert set(results) == {"sigmoid", "sigmoid+rbm", "relu", "pretrain_seconds"}
    for name in ("sigmoid", "sigmoid+rbm", "relu"):
        assert list(results[name]["gradient_norms"]) == ["hidden1", "hidden2", "out"]
    # the features learnt without labels separate the two prototypes: one epoch of fine-tuning classifies them
    assert results["sigmoid+rbm"]["test_accuracy"][0] > 0.95
    table = bench.table(results)
    assert "| grad norm `hidden1` |" in table and "| test accuracy, epoch 1 |" in table


def test_layer_gradient_norms():
    model = jaxnets.build("mlp", (16,), 2, hidden=(12,) * 6, activation="sigmoid")
    params, state = jax.jit(model.init)(jax.random.key(0))
    x, y = binary_data(64, 16)
    norms = analysis.layer_gradient_norms(model, params, state, jnp.asarray(x), jnp.asarray(y))
    assert list(norms) == [f"hidden{i}" for i in range(1, 7)] + ["out"]  # input to output, not sorted
    grads = jax.jit(jax.grad(lambda p: jnp.mean(model.metrics(p, state, x, y)[0]["loss"])))(params)
    expected = np.sqrt(np.sum(np.square(grads["hidden3"]["w"])) + np.sum(np.square(grads["hidden3"]["b"])))
    assert norms["hidden3"] == pytest.approx(float(expected), rel=1e-5)
    assert norms["hidden1"] < 0.1 * norms["hidden6"]  # vanishing: six sigmoid layers shrink the gradient
    nested = analysis._layers({"a": {"b": {"w": 1}, "c": {"w": 2}}, "d": {"w": 3}})
    assert nested == [("a/b", ("a", "b")), ("a/c", ("a", "c")), ("d", ("d",))]
