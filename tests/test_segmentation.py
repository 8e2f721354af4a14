"""Segmentation: bilinear upsampling, crop-and-concatenate skips, the transposed convolution as conv's adjoint for
string paddings, pixel accuracy and mean IoU (through ``finalize`` in ``train.evaluate``), fcn and unet training on
tiny canvases, and train.py's path on canvases writing segmentation.png."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from gradcheck import check_grad, x64
from PIL import Image
from test_canvas import fake_digits, tiny_canvas_source

from jaxnets import data, models, nn, train
from jaxnets.data import canvas


def test_bilinear_upsampling_values_and_gradients():
    x = jnp.array([[0.0, 1.0], [2.0, 3.0]]).reshape(1, 2, 2, 1)
    up, _ = nn.upsample(2, method="bilinear").apply({}, {}, x)
    row = np.array([0.0, 0.25, 0.75, 1.0])  # half-pixel centres, edges clamped (PyTorch align_corners=False)
    np.testing.assert_allclose(up[0, ..., 0], row[None, :] + 2 * row[:, None], atol=1e-6)
    assert nn.upsample(3, method="bilinear").init(jax.random.PRNGKey(0), (4, 5, 2))[2] == (12, 15, 2)
    np.testing.assert_array_equal(nn.upsample(2).apply({}, {}, x)[0][0, :2, :2, 0], 0.0)  # nearest: blocks
    with pytest.raises(ValueError, match="method must be one of"):
        nn.upsample(2, method="cubic")
    rng = np.random.default_rng(0)
    with x64():
        target = jnp.asarray(rng.standard_normal((2, 6, 9, 2)))
        inputs = jnp.asarray(rng.standard_normal((2, 2, 3, 2)))
        layer = nn.upsample(3, method="bilinear")
        assert check_grad(lambda a: jnp.sum(jnp.tanh(layer.apply({}, {}, a)[0]) * target), inputs) > 0


def test_crop_concat_shapes_values_and_errors():
    skip = jnp.arange(2 * 7 * 6 * 1, dtype=jnp.float32).reshape(2, 7, 6, 1)
    x = jnp.ones((2, 4, 4, 3))
    y = nn.crop_concat(skip, x)
    assert y.shape == (2, 4, 4, 4)
    np.testing.assert_array_equal(y[..., :1], skip[:, 1:5, 1:5])  # (7-4)//2 = 1 and (6-4)//2 = 1 dropped first
    np.testing.assert_array_equal(y[..., 1:], 1.0)
    np.testing.assert_array_equal(nn.center_crop(skip[..., 0], (3, 2)), skip[:, 2:5, 2:4, 0])
    with pytest.raises(ValueError, match="at least as large"):
        nn.crop_concat(x, skip)
    layer = nn.skip_concat(nn.serial(nn.conv2d(5, 3), nn.conv2d(2, 3)))  # VALID: 9x9 -> 5x5
    params, _, shape = layer.init(jax.random.PRNGKey(0), (9, 9, 3))
    assert shape == (5, 5, 3 + 2)
    rng = np.random.default_rng(1)
    with x64():
        params = jax.tree.map(lambda a: jnp.asarray(rng.standard_normal(a.shape)), params)
        inputs = jnp.asarray(rng.standard_normal((2, 9, 9, 3)))
        out, _ = layer.apply(params, {}, inputs)
        np.testing.assert_array_equal(out[..., :3], inputs[:, 2:7, 2:7])
        target = jnp.asarray(rng.standard_normal(out.shape))

        def loss(args):
            return jnp.sum(jnp.tanh(layer.apply(args["params"], {}, args["x"])[0]) * target)

        assert check_grad(loss, {"params": params, "x": inputs}) > 0


@pytest.mark.parametrize(
    ("padding", "stride", "kernel"), [("SAME", 2, 4), ("SAME", 3, 3), ("VALID", 2, 2), ("VALID", 2, 5)]
)
def test_conv_transpose_is_the_vjp_of_conv_for_string_paddings(padding, stride, kernel):
    rng = np.random.default_rng(stride * kernel)
    v = jnp.asarray(rng.standard_normal((2, 4, 5, 3)), jnp.float32)
    w = jnp.asarray(rng.standard_normal((kernel, kernel, 3, 2)), jnp.float32)
    y = nn.conv_transpose_general(v, w, (stride, stride), padding)

    def forward(u):
        return jax.lax.conv_general_dilated(
            u, jnp.swapaxes(w, -1, -2), (stride, stride), padding, dimension_numbers=("NHWC", "HWIO", "NHWC")
        )

    u = jnp.zeros(y.shape, jnp.float32)
    assert forward(u).shape == v.shape
    np.testing.assert_allclose(y, jax.vjp(forward, u)[1](v)[0], rtol=1e-5, atol=1e-5)


# Two 2x3 examples of 3 classes (hand-computed in the test below).
TRUE = np.array([[[0, 0, 1], [1, 1, 2]], [[0, 0, 0], [0, 2, 2]]], np.int32)
PRED = np.array([[[0, 1, 1], [1, 1, 2]], [[0, 0, 0], [2, 2, 2]]], np.int32)


def test_mean_iou_and_pixel_accuracy_against_hand_computed_values():
    inter, union = models.class_counts(jnp.asarray(PRED), jnp.asarray(TRUE), 3)
    np.testing.assert_array_equal(inter, [[1, 3, 1], [3, 0, 2]])
    np.testing.assert_array_equal(union, [[2, 4, 1], [4, 0, 3]])
    # dataset level: class 0 4/6, class 1 3/4, class 2 3/4 (the mean of per-example mIoUs would be 0.7292)
    np.testing.assert_allclose(models.mean_iou(inter.sum(0), union.sum(0)), (4 / 6 + 3 / 4 + 3 / 4) / 3, rtol=1e-6)
    np.testing.assert_allclose(models.mean_iou(inter, union), [(1 / 2 + 3 / 4 + 1) / 3, (3 / 4 + 2 / 3) / 2], rtol=1e-6)
    assert float(models.mean_iou(jnp.zeros(3), jnp.zeros(3))) == 0.0
    # the model's logits are its input (10 x one-hot of PRED): the whole evaluation path, finalize included
    model = models.Model(
        "given",
        nn.stateless("identity", lambda x: x),
        (2, 3, 3),
        objective=models.pixel_cross_entropy,
        finalize=models.segmentation_summary,
    )
    logits = 10 * jax.nn.one_hot(PRED, 3)
    for batch_size in (1, 2):
        got = train.evaluate(model, {}, {}, logits, TRUE, batch_size=batch_size)
        assert set(got) == {"loss", "pixel_accuracy", "mean_iou"}
        np.testing.assert_allclose(got["mean_iou"], (4 / 6 + 3 / 4 + 3 / 4) / 3, rtol=1e-6)
        np.testing.assert_allclose(got["pixel_accuracy"], 5 / 6, rtol=1e-6)
        np.testing.assert_allclose(got["loss"], 10 / 6 + np.log1p(2 * np.exp(-10)), rtol=1e-5)
    step = train.supervised(model, optax.identity())._replace(finalize=None)
    with pytest.raises(ValueError, match=r"metric 'intersection' has shape \(3,\).*finalize"):
        train.evaluate_state(step, train.TrainState(jnp.zeros((), jnp.int32), {}, {}, None, None), logits, TRUE)
    with pytest.raises(ValueError, match="integer class masks"):
        model.metrics({}, {}, logits, TRUE.astype(np.float32))


def tiny_canvases(count: int = 16, size: int = 32) -> canvas.Canvases:
    digits, labels = fake_digits()
    return canvas.mnist_canvases(digits, labels, count, size=size, max_digits=2, seed=0)


@pytest.mark.parametrize(
    ("name", "options", "size"),
    [
        ("fcn", {"channels": (4, 4, 8, 8, 8), "fc": 8}, 32),
        ("unet", {"channels": (4, 8)}, 32),
        ("unet", {"channels": (4, 8), "batch_norm": True}, 32),
    ],
)
def test_segmentation_models_train_on_tiny_canvases(name, options, size):
    c = tiny_canvases(size=size)
    model = models.build(name, (size, size, 1), 11, strategy="xla", **options)  # (xla: the quickest to compile)
    optimizer = optax.adam(1e-2)
    step = train.make_train_step(model, optimizer)
    state = train.create_train_state(model, optimizer, jax.random.PRNGKey(0))
    x, y = jnp.asarray(c.images), jnp.asarray(c.masks)
    losses = []
    for _ in range(12):
        state, metrics = step(state, x, y)
        losses.append(float(metrics["loss"]))
    assert losses[-1] < 0.7 * losses[0], losses
    got = train.evaluate(model, state.params, state.model_state, x, y)
    assert set(got) == {"loss", "pixel_accuracy", "mean_iou"} and 0 < got["mean_iou"] <= 1
    # batch norm: 8 per level (two 3x3 convs down, two up; mean and var each), running averages moved by training
    stats = jax.tree.leaves(state.model_state)
    assert len(stats) == (8 * len(options["channels"]) - 4 if options.get("batch_norm") else 0)
    init_stats = jax.tree.leaves(train.create_train_state(model, optimizer, jax.random.PRNGKey(0)).model_state)
    assert all(not np.allclose(a, b) for a, b in zip(stats, init_stats, strict=True))


def test_unpadded_unet_scores_the_centre_of_the_masks():
    model = models.unet((44, 44, 1), 11, channels=(4, 8), padding="VALID")  # 44 -> 40 -> 20 -> 16 -> 32 -> 28
    params, state = model.init(jax.random.PRNGKey(0))
    c = tiny_canvases(4, 44)
    logits = jax.eval_shape(lambda p: model.apply(p, state, c.images)[0], params)
    assert logits.shape == (4, 28, 28, 11)
    metrics, _ = model.metrics(params, state, jnp.asarray(c.images), jnp.asarray(c.masks))
    assert metrics["intersection"].shape == (4, 11)
    union = np.asarray(metrics["union"]).sum(1)  # each scored pixel is in the union of its true and predicted class
    assert (union >= 28 * 28).all() and (union <= 2 * 28 * 28).all()


def test_segmentation_models_reject_bad_settings():
    with pytest.raises(ValueError, match="multiples of 32"):
        models.fcn((48, 48, 1))
    with pytest.raises(ValueError, match="padding must be 'SAME' or 'VALID'"):
        models.unet(padding="FULL")
    with pytest.raises(ValueError, match="channels must be >= 1"):
        models.unet(channels=(8, 0))


def test_train_run_on_canvases_writes_segmentation_png(tmp_path, monkeypatch):
    with tiny_canvas_source(monkeypatch, 32):
        lines: list[str] = []
        config = train.TrainConfig(
            model="unet",
            dataset="mnist_canvas",
            epochs=1,
            batch_size=8,
            model_args={"channels": [4, 8]},
            workdir=str(tmp_path),
        )
        with nn.conv_strategy("xla"):  # (the quickest to compile)
            result = train.run(config, progress=False, log=lines.append)
    assert lines[0].startswith("unet on mnist_canvas: adam lr 0.001")
    last = result.history[-1]
    assert {"train_loss", "train_pixel_accuracy", "test_loss", "test_pixel_accuracy", "test_mean_iou"} <= set(last)
    assert (tmp_path / "segmentation.png").exists()
    # curves.png: one panel (5 inches at 100 dpi) per metric, the test-only mean IoU among them
    with Image.open(tmp_path / "curves.png") as curves:
        assert curves.size[0] == 500 * 3  # loss, pixel accuracy, mean IoU
    assert isinstance(data.load_raw("xor"), data.Dataset)
