"""Super-resolution: the sub-pixel shuffle and its inverse (values, gradients), bicubic pairs, PSNR and SSIM against
hand-computed values (and scikit-image when installed), SRCNN / ESPCN training a few steps with falling loss, and
train.py's path on the canvas pairs (the dataset's scale given to the model, superres.png written)."""

from __future__ import annotations

import dataclasses
import sys

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from gradcheck import check_grad, x64
from test_canvas import tiny_canvas_source

from jaxnets import data, models, nn, train


def test_pixel_shuffle_order_inverse_and_gradient():
    x = jnp.arange(2 * 2 * 3 * 8, dtype=jnp.float32).reshape(2, 2, 3, 8)  # r = 2, c = 2
    y, _ = nn.pixel_shuffle(2).apply({}, {}, x)
    assert y.shape == (2, 4, 6, 2)
    # output (i*r + a, j*r + b, k) = input (i, j, (a*r + b)*c + k)
    assert float(y[1, 2 * 1 + 1, 2 * 2 + 0, 1]) == float(x[1, 1, 2, (1 * 2 + 0) * 2 + 1])
    back, _ = nn.pixel_unshuffle(2).apply({}, {}, y)
    np.testing.assert_array_equal(np.asarray(back), np.asarray(x))
    with x64():
        w = jnp.asarray(np.random.default_rng(0).standard_normal((1, 4, 6, 2)))
        xs = jnp.asarray(np.random.default_rng(1).standard_normal((1, 2, 3, 8)))
        check_grad(lambda a: jnp.sum(nn.pixel_shuffle(2).apply({}, {}, a)[0] * w), xs)
    with pytest.raises(ValueError, match="factor"):
        nn.pixel_shuffle(2).init(jax.random.PRNGKey(0), (4, 4, 6))


def test_superres_pairs_shapes_and_bicubic_of_a_constant():
    images = np.full((2, 13, 14, 1), 0.25, np.float32)
    pairs = data.superres_pairs(images, 3)
    assert pairs.low.shape == (2, 4, 4, 1) and pairs.high.shape == (2, 12, 12, 1) == pairs.bicubic.shape
    np.testing.assert_allclose(pairs.bicubic, 0.25, atol=1e-5)
    with pytest.raises(ValueError, match="scale"):
        data.superres_pairs(images, 5)


def test_psnr_and_ssim_against_hand_computed_values():
    a = jnp.zeros((1, 12, 12, 1))
    b = a + 0.1  # MSE 0.01 -> 20 dB
    np.testing.assert_allclose(np.asarray(models.psnr(b, a)), [20.0], rtol=1e-5)
    # constant images: no variance, so SSIM = (2 mx my + c1) / (mx^2 + my^2 + c1)
    x, y = a + 0.5, a + 0.3
    c1 = 0.01**2
    np.testing.assert_allclose(np.asarray(models.ssim(x, y)), [(2 * 0.15 + c1) / (0.34 + c1)], rtol=1e-4)
    np.testing.assert_allclose(np.asarray(models.ssim(x, x)), [1.0], rtol=1e-6)


def test_ssim_equals_scikit_image():
    metrics = pytest.importorskip("skimage.metrics")
    rng = np.random.default_rng(0)
    x = rng.uniform(size=(20, 23)).astype(np.float32)
    y = np.clip(x + rng.normal(0, 0.1, x.shape), 0, 1).astype(np.float32)
    want = metrics.structural_similarity(
        x, y, gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=1.0
    )
    got = float(models.ssim(jnp.asarray(x)[None, :, :, None], jnp.asarray(y)[None, :, :, None])[0])
    assert abs(got - want) < 1e-5


@pytest.mark.parametrize("name", ["srcnn", "espcn"])
def test_superres_models_train_with_falling_loss(name):
    rng = np.random.default_rng(0)
    hr = rng.uniform(size=(8, 12, 12, 1)).astype(np.float32)
    pairs = data.superres_pairs(hr, 2)
    x = pairs.bicubic if name == "srcnn" else pairs.low
    kwargs = {"features": (8, 4)} | ({"scale": 2} if name == "espcn" else {})
    model = models.build(name, x.shape[1:], **kwargs)
    params, state = model.init(jax.random.PRNGKey(0))
    opt = optax.adam(3e-3)
    opt_state = opt.init(params)

    def loss(p):
        return model.metrics(p, state, jnp.asarray(x), jnp.asarray(pairs.high))[0]["loss"].mean()

    @jax.jit
    def step(p, s):
        value, g = jax.value_and_grad(loss)(p)
        u, s = opt.update(g, s)
        return optax.apply_updates(p, u), s, value

    losses = []
    for _ in range(15):
        params, opt_state, value = step(params, opt_state)
        losses.append(float(value))
    assert losses[-1] < 0.7 * losses[0]
    m = model.metrics(params, state, jnp.asarray(x), jnp.asarray(pairs.high))[0]
    assert set(m) == {"loss", "psnr", "bicubic_psnr"} and m["psnr"].shape == (8,)


def test_srcnn_with_a_scale_enlarges_by_bicubic_first_and_a_border_is_left_out():
    x = np.random.default_rng(0).uniform(size=(2, 5, 6, 1)).astype(np.float32)
    model = models.build("srcnn", x.shape[1:], scale=3, features=(4, 2), kernel_sizes=(3, 1, 3))
    params, state = model.init(jax.random.PRNGKey(0))
    params = jax.tree.map(jnp.zeros_like, params)
    params["conv3"]["b"] = jnp.full_like(params["conv3"]["b"], 0.5)
    out = jax.jit(lambda p, a: model.apply(p, state, a)[0])(params, jnp.asarray(x))
    assert out.shape == (2, 15, 18, 1)
    np.testing.assert_allclose(np.asarray(out), 0.5)  # zero weights: the bias alone, at the enlarged size
    m = jax.jit(lambda p, a, t: model.metrics(p, state, a, t)[0])(params, jnp.asarray(x), jnp.zeros(out.shape))
    bicubic = nn.bicubic_resize(jnp.asarray(x), 15, 18)
    want = models.psnr(bicubic, jnp.zeros_like(bicubic))
    np.testing.assert_allclose(np.asarray(m["bicubic_psnr"]), np.asarray(want), rtol=1e-5)
    # border: the output's 2-pixel rim (where only the targets differ from 0.5) is left out of the loss
    targets = jnp.full(out.shape, 1.0).at[:, 2:-2, 2:-2].set(0.5)
    rimless = dataclasses.replace(model, objective=models.SuperResolution(3, border=2))
    assert float(model.metrics(params, state, jnp.asarray(x), targets)[0]["loss"][0]) > 0.01
    np.testing.assert_allclose(np.asarray(rimless.metrics(params, state, jnp.asarray(x), targets)[0]["loss"]), 0.0)
    with pytest.raises(ValueError, match="border 8 leaves nothing"):
        dataclasses.replace(model, objective=models.SuperResolution(3, border=8)).metrics(params, state, x, targets)


def test_photographs_name_the_extra_when_scikit_image_is_missing(monkeypatch):
    monkeypatch.setitem(sys.modules, "skimage", None)  # (import skimage raises ImportError)
    with pytest.raises(ImportError, match=r"jaxnets\[photos\]"):
        data.photographs(("camera",))


def test_train_run_on_canvas_pairs_takes_the_scale_and_writes_superres_png(tmp_path, monkeypatch):
    with tiny_canvas_source(monkeypatch, 24):
        assert train.TrainConfig(model="espcn", dataset="mnist_canvas_sr3").resolved().model_args == {"scale": 3}
        lines: list[str] = []
        config = train.TrainConfig(
            model="srcnn",
            dataset="mnist_canvas_sr",
            epochs=1,
            batch_size=8,
            model_args={"features": [4, 2]},
            workdir=str(tmp_path),
        )
        result = train.run(config, progress=False, log=lines.append)
    assert lines[0].startswith("srcnn on mnist_canvas_sr: adam lr 0.001") and '"scale": 2' in lines[0]
    assert {"train_loss", "train_psnr", "test_psnr", "test_bicubic_psnr"} <= set(result.history[-1])
    assert any(line.endswith("superres.png") for line in lines) and (tmp_path / "superres.png").exists()
