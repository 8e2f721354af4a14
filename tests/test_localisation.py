"""Weakly supervised localisation: CAM is the class's weighted sum of the last feature maps (its spatial mean plus
the bias is the logit), Grad-CAM of the GAP network is ReLU(CAM) / (h w), boxes from thresholded maps by hand, and
cam_cnn trained a few steps with a falling loss, then scored by localisation_accuracy."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from helpers import model_params

from jaxnets import models, train


def squares(n: int, size: int = 16, seed: int = 0):
    """Images with one bright square (class 0: 4x4, class 1: 8x8), their boxes (n, 4) and labels (n,)."""
    rng = np.random.default_rng(seed)
    x, boxes, labels = np.zeros((n, size, size, 1), np.float32), np.zeros((n, 4), np.float32), np.zeros(n, np.int32)
    for i in range(n):
        labels[i] = rng.integers(2)
        side = 4 + 4 * labels[i]
        r, q = rng.integers(0, size - side + 1, 2)
        x[i, r : r + side, q : q + side] = 1.0
        boxes[i] = (q, r, q + side, r + side)
    return x, boxes, labels


def test_cam_is_the_weighted_sum_whose_mean_plus_bias_is_the_logit():
    model = models.cam_cnn((16, 16, 1), 3, features=(4, 5, 6))
    params, state = model_params(model, np.random.default_rng(0))
    x = jnp.asarray(np.random.default_rng(1).standard_normal((4, 16, 16, 1)), jnp.float32)
    logits, _ = model.apply(params, state, x)
    for c in range(3):
        cam = models.class_activation_map(model, params, state, x, jnp.full(4, c), upsample=False)
        assert cam.shape == (4, 4, 4)  # two poolings: a quarter of 16
        np.testing.assert_allclose(cam.mean(axis=(1, 2)) + params["out"]["b"][c], logits[:, c], rtol=1e-4, atol=1e-5)
    full = models.class_activation_map(model, params, state, x)  # the predicted classes, upsampled to 16 x 16
    predicted = models.class_activation_map(model, params, state, x, jnp.argmax(logits, -1))
    assert full.shape == (4, 16, 16)
    np.testing.assert_allclose(full, predicted, rtol=1e-6)


def test_grad_cam_of_the_gap_network_is_relu_cam_over_the_map_size():
    model = models.cam_cnn((16, 16, 1), 3, features=(4, 5))
    params, state = model_params(model, np.random.default_rng(2))
    x = jnp.asarray(np.random.default_rng(3).standard_normal((3, 16, 16, 1)), jnp.float32)
    classes = jnp.asarray([0, 1, 2])
    cam = models.class_activation_map(model, params, state, x, classes, upsample=False)
    grad = models.grad_cam(model, params, state, x, classes, upsample=False)
    assert float(jnp.min(cam)) < 0 < float(jnp.max(cam))  # the ReLU matters here
    np.testing.assert_allclose(grad, jax.nn.relu(cam) / 16, rtol=1e-4, atol=1e-6)


def test_grad_cam_of_small_cnn_and_unknown_models():
    model = models.small_cnn((8, 8, 1), 3, features=4)
    params, state = model_params(model, np.random.default_rng(4))
    x = jnp.asarray(np.random.default_rng(5).standard_normal((2, 8, 8, 1)), jnp.float32)
    maps = [models.grad_cam(model, params, state, x, jnp.full(2, c), upsample=False) for c in range(3)]
    assert maps[0].shape == (2, 8, 8) and all(float(m.min()) >= 0 for m in maps)
    assert float(jnp.abs(maps[0] - maps[1]).max()) > 0  # one map per class
    mlp = models.mlp((4,), 2, hidden=(3,))
    with pytest.raises(ValueError, match="mlp: class maps need a cam_cnn or a small_cnn"):
        models.grad_cam(mlp, *jax.eval_shape(mlp.init, jax.random.key(0)), jnp.zeros((1, 4)))


def test_box_from_map_takes_the_largest_region_above_a_fifth_of_the_maximum():
    heat = np.zeros((10, 12))
    heat[1, 1] = 10.0  # the peak, alone
    heat[4:8, 3:9] = 2.5  # the largest region above 20% of 10
    heat[9, 0:12] = 1.9  # below the threshold
    np.testing.assert_array_equal(models.box_from_map(heat), [3, 4, 9, 8])
    np.testing.assert_array_equal(models.box_from_map(heat, threshold=0.5), [1, 1, 2, 2])
    heat[0, 5:12] = -20.0  # negative evidence does not lower the threshold (min-max scaling would: -14, all of it)
    np.testing.assert_array_equal(models.box_from_map(heat), [3, 4, 9, 8])
    np.testing.assert_array_equal(models.box_from_map(np.ones((4, 5))), [0, 0, 5, 4])  # flat: the whole image
    np.testing.assert_array_equal(models.box_from_map(-np.ones((4, 5))), [0, 0, 5, 4])  # nothing positive: the same


def test_cam_cnn_loss_falls_and_localisation_is_scored():
    x, boxes, labels = squares(96)
    model = models.cam_cnn((16, 16, 1), 2, features=(4, 8))
    result = train.fit(
        model, x, labels, optimizer=optax.adam(1e-2), epochs=5, batch_size=16, progress=False, log=lambda _: None
    )
    first, last = result.history[0], result.history[-1]
    assert last["train_loss"] < 0.8 * first["train_loss"], (first, last)
    params, state = result.state.params, result.state.model_state
    scores = models.localisation_accuracy(model, params, state, x[:40], boxes[:40], labels[:40], batch_size=16)
    logits, _ = model.apply(params, state, jnp.asarray(x[:40]))
    assert scores["accuracy"] == pytest.approx(float(np.mean(np.argmax(logits, -1) == labels[:40])))
    assert 0.0 <= scores["top1_loc"] <= min(scores["loc"], scores["accuracy"])
    grad = models.localisation_accuracy(model, params, state, x[:40], boxes[:40], labels[:40], method="grad_cam")
    assert grad["accuracy"] == scores["accuracy"]
    with pytest.raises(ValueError, match="unknown method 'gradcam'; choose one of"):
        models.localisation_accuracy(model, params, state, x, boxes, labels, method="gradcam")
