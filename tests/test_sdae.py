"""Stacked denoising autoencoders (Vincent et al. 2010) by ``pretrain_stack(layer='dae')``: each layer is a one-layer
DAE trained on the codes of the one below, the stack starts a sigmoid MLP, and bad options fail before training."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxnets
from jaxnets import models, train
from jaxnets.train import pretrain


def binary_data(n: int = 128, d: int = 16, seed: int = 0) -> np.ndarray:
    """Two binary prototypes with 5% of the bits flipped."""
    rng = np.random.default_rng(seed)
    protos = rng.random((2, d)) < 0.5
    return (protos[rng.integers(0, 2, n)] ^ (rng.random((n, d)) < 0.05)).astype(np.float32)


def test_each_dae_is_trained_on_the_codes_of_the_one_below(monkeypatch):
    seen = []

    def recording_fit(model, x, y, **kwargs):
        seen.append((model, np.array(x)))
        return train.fit(model, x, y, **kwargs)

    monkeypatch.setattr(pretrain, "fit", recording_fit)
    x = binary_data().reshape(128, 4, 4)  # flattened by the stack
    lines: list[str] = []
    stack = train.pretrain_stack((8, 6), x, layer="dae", epochs=3, batch_size=16, lr=0.1, log=lines.append)
    assert len(seen) == 2 and len(lines) == 2 and lines[0].startswith("dae 1 (16-8)") and "mask noise 0.25" in lines[0]
    (first, first_x), (second, second_x) = seen
    assert first.input_shape == (16,) and second.input_shape == (8,)
    assert first.objective == models.Reconstruction("mask", 0.25)  # denoising: corrupted in training
    np.testing.assert_array_equal(first_x, x.reshape(128, 16))
    # the second layer sees the first's encoder outputs on the data: the pretrained MLP's first hidden layer
    mlp = models.with_initial_params(jaxnets.build("mlp", (16,), 2, hidden=(8, 6), activation="sigmoid"), stack)
    params, _ = mlp.init(jax.random.key(0))
    codes = jax.nn.sigmoid(x.reshape(128, 16) @ params["hidden1"]["w"] + params["hidden1"]["b"])
    np.testing.assert_allclose(second_x, codes, rtol=1e-6, atol=1e-6)
    assert np.std(second_x) > 0.01  # trained codes, not a constant
    for name in ("hidden1", "hidden2"):
        for k in ("w", "b"):
            np.testing.assert_array_equal(params[name][k], stack[name][k])
    assert params["out"]["w"].shape == (6, 2)  # the output layer keeps its own initialisation


def test_dae_pretraining_learns_to_denoise():
    """One layer's reconstruction error falls with training, and the encoder moved from its initialisation."""
    x = binary_data(256)
    lines: list[str] = []
    for epochs in (1, 30):
        train.pretrain_stack((8,), x, layer="dae", epochs=epochs, batch_size=16, lr=0.1, log=lines.append)
    errors = [float(line.rsplit("error ", 1)[1].split()[0]) for line in lines]
    assert errors[1] < 0.5 * errors[0], lines


def test_rbm_is_still_the_default_layer(monkeypatch):
    kinds = []

    def recording_fit(model, x, y, **kwargs):
        kinds.append(model.name)
        return train.fit(model, x, y, **kwargs)

    monkeypatch.setattr(pretrain, "fit", recording_fit)
    stack = train.pretrain_stack((4,), binary_data(32), epochs=1, batch_size=16)
    assert kinds == ["rbm"] and stack["hidden1"]["w"].shape == (16, 4)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"layer": "vae"}, "layer 'vae'"),
        ({"layer": "dae", "corruption": "salt"}, "corruption 'salt'"),
        ({"layer": "dae", "level": 1.0}, "masking noise"),
    ],
)
def test_bad_options_fail_before_training(options, message):
    with pytest.raises(ValueError, match=message):
        train.pretrain_stack((4,), jnp.zeros((8, 16)), **options)
