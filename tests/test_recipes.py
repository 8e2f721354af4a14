"""Issue 15's recipes: on-device augmentation (determinism, identities, the geometry against numpy and scipy, bitwise
resume with it on), the learning-rate schedules at hand-computed steps, gradient clipping, Adadelta and the new flags
from the command line, and mixed precision (bfloat16 close to float32, float32 parameters, float16 loss scaling)."""

from __future__ import annotations

import functools
import itertools
import json
import math

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
import scipy.ndimage
from helpers_train import in_process_cli, leaves_equal, one_line

from jaxnets import data, nn, train
from jaxnets.cli.train import main
from jaxnets.models import Model

RNG = np.random.default_rng(0)
IMAGES = jnp.asarray(RNG.standard_normal((4, 9, 9, 2)), jnp.float32)
NAMES = ("shift", "affine", "elastic")


@pytest.fixture
def cli(capsys, monkeypatch):
    return functools.partial(in_process_cli(capsys, monkeypatch), main)


# --- augmentation ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", NAMES)
def test_an_augmentation_is_a_function_of_its_key(name):
    augment = jax.jit(data.augmentation(name))
    a, b = augment(jax.random.key(0), IMAGES), augment(jax.random.key(0), IMAGES)
    assert a.shape == IMAGES.shape and a.dtype == IMAGES.dtype
    np.testing.assert_array_equal(a, b)
    other = augment(jax.random.key(1), IMAGES)
    assert float(jnp.abs(other - a).max()) > 0.1
    assert all(float(jnp.abs(a[i] - IMAGES[i]).max()) > 0.1 for i in range(4))  # (every image moved)
    assert float(jnp.abs(a[0] - a[1] + IMAGES[1] - IMAGES[0]).max()) > 0.1  # (each by its own draw)


def test_zero_strength_and_identity_maps_give_the_images_back():
    for name in NAMES:
        same = jax.jit(data.augmentation(name, strength=0))(jax.random.key(3), IMAGES)
        np.testing.assert_array_equal(same, IMAGES, err_msg=name)
    eye = jnp.broadcast_to(jnp.eye(2), (4, 2, 2))
    np.testing.assert_array_equal(jax.jit(data.affine)(IMAGES, eye, jnp.zeros((4, 2))), IMAGES)
    elastic = jax.jit(functools.partial(data.elastic_distortion, alpha=0.0))
    np.testing.assert_array_equal(elastic(jax.random.key(3), IMAGES), IMAGES)
    assert data.augmentation("none") is None


def test_a_shift_is_the_affine_map_of_its_whole_pixel_translation():
    """random_shift slices the edge-padded images; the same translations through ``affine``'s interpolation."""
    shifted = jax.jit(data.random_shift, static_argnums=2)(jax.random.key(5), IMAGES, 3)
    moves = [
        next(t for t in itertools.product(range(-3, 4), repeat=2) if np.array_equal(moved(i, t), shifted[i]))
        for i in range(4)
    ]
    assert len(set(moves)) > 1  # (each image its own draw)
    eye = jnp.broadcast_to(jnp.eye(2), (4, 2, 2))
    np.testing.assert_array_equal(data.affine(IMAGES, eye, jnp.asarray(moves, jnp.float32)), shifted)


def moved(i: int, t: tuple[int, int]) -> np.ndarray:
    """Image ``i`` of IMAGES translated by ``t`` whole pixels (row, column), edges extended (numpy)."""
    x = np.pad(np.asarray(IMAGES[i]), ((3, 3), (3, 3), (0, 0)), mode="edge")
    h, w = IMAGES.shape[1:3]
    return x[3 - t[0] : 3 - t[0] + h, 3 - t[1] : 3 - t[1] + w]


def test_affine_maps_move_pixels_as_numpy_does():
    eye = jnp.broadcast_to(jnp.eye(2), (4, 2, 2))
    affine = jax.jit(data.affine)
    down = np.asarray(affine(IMAGES, eye, jnp.tile(jnp.array([[1.0, -2.0]]), (4, 1))))
    x = np.asarray(IMAGES)
    np.testing.assert_array_equal(down[:, 1:, :-2], x[:, :-1, 2:])  # one row down, two columns left
    np.testing.assert_array_equal(down[:, 0, :-2], x[:, 0, 2:])  # (the edge row extended)
    quarter = jnp.broadcast_to(jnp.array([[0.0, -1.0], [1.0, 0.0]]), (4, 2, 2))  # (row, col) -> (-col, row)
    np.testing.assert_allclose(affine(IMAGES, quarter, jnp.zeros((4, 2))), np.rot90(x, 1, (1, 2)), atol=1e-5)
    half = np.asarray(affine(IMAGES, eye, jnp.full((4, 2), 0.5)))
    want = (x[:, :-1, :-1] + x[:, 1:, :-1] + x[:, :-1, 1:] + x[:, 1:, 1:]) / 4  # bilinear: the four neighbours
    np.testing.assert_allclose(half[:, 1:, 1:], want, atol=1e-5)


def test_elastic_fields_are_scipys_gaussian_smoothing_of_the_uniform_draws():
    key = jax.random.key(5)
    images = jnp.broadcast_to(jnp.arange(9.0)[None, :, None, None], (4, 9, 9, 1))  # row index as the value
    out = np.asarray(jax.jit(functools.partial(data.elastic_distortion, alpha=3.0, sigma=1.5))(key, images))
    field = np.asarray(jax.random.uniform(key, (4 * 2 * 9 * 9,), minval=-1, maxval=1)).reshape(4, 2, 9, 9)
    rows = np.arange(9.0)[None, :, None] + 3.0 * scipy.ndimage.gaussian_filter(
        field[:, 0], 1.5, mode="constant", axes=(1, 2)
    )
    np.testing.assert_allclose(out[..., 0], np.clip(rows, 0, 8), atol=1e-4)  # (bilinear in rows is exact here)


def test_augmentation_needs_images_and_known_names():
    with pytest.raises(ValueError, match=r"augment: needs images \(batch, height, width, channels\); got shape"):
        data.random_shift(jax.random.key(0), jnp.zeros((4, 784)))
    with pytest.raises(ValueError, match=r"unknown augment 'elastik' .*elastic"):
        data.augmentation("elastik")


def _tiny_cnn() -> Model:
    layer = nn.serial(nn.conv2d(4, 3, name="c"), nn.activation("relu"), nn.flatten(), nn.dense(2, name="out"))
    return Model("tiny_cnn", layer, (8, 8, 1))


def test_augmented_model_augments_training_passes_only():
    model = _tiny_cnn()
    aug = train.augmented(model, data.augmentation("elastic"))
    params, state = model.init(jax.random.key(0))
    x = jnp.asarray(RNG.standard_normal((3, 8, 8, 1)), jnp.float32)
    plain = model.apply(params, state, x)[0]
    np.testing.assert_array_equal(aug.apply(params, state, x)[0], plain)  # evaluation: the images as they are
    one = aug.apply(params, state, x, key=jax.random.key(1), train=True)[0]
    np.testing.assert_array_equal(aug.apply(params, state, x, key=jax.random.key(1), train=True)[0], one)
    assert float(jnp.abs(one - plain).max()) > 1e-3
    assert float(jnp.abs(aug.apply(params, state, x, key=jax.random.key(2), train=True)[0] - one).max()) > 1e-3
    with pytest.raises(ValueError, match="tiny_cnn: an augmented model needs a key when train=True"):
        aug.apply(params, state, x, train=True)
    assert train.augmented(model, None) is model


def test_resume_with_augmentation_is_bitwise_the_uninterrupted_run(tmp_path):
    x = RNG.standard_normal((32, 8, 8, 1)).astype(np.float32)
    y = (x.mean(axis=(1, 2, 3)) > 0).astype(np.int32)
    model = train.augmented(_tiny_cnn(), data.augmentation("affine"))
    quiet = {"optimizer": optax.sgd(0.1), "batch_size": 8, "seed": 3, "progress": False, "log": lambda s: None}
    straight = train.fit(model, x, y, epochs=2, **quiet).state
    train.fit(model, x, y, epochs=1, workdir=tmp_path, **quiet)
    resumed = train.fit(model, x, y, epochs=2, workdir=tmp_path, resume=True, **quiet).state
    assert int(resumed.step) == 8 and leaves_equal(resumed.params, straight.params)
    plain = train.fit(_tiny_cnn(), x, y, epochs=2, **quiet).state
    assert not leaves_equal(plain.params, straight.params)  # (the augmentation took part)


# --- schedules, clipping, optimisers --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "schedule, points",
    [
        ("constant", {0: 0.1, 99: 0.1}),
        ("cosine", {0: 0.1, 100: 0.05, 200: 0.0}),
        ("step", {0: 0.1, 99: 0.1, 100: 0.01, 149: 0.01, 150: 0.001, 199: 0.001}),
        ("halving", {0: 0.1, 49: 0.1, 50: 0.05, 100: 0.025, 149: 0.025, 150: 0.0125, 199: 0.0125}),
        ("exponential", {0: 0.1, 50: 0.1 * 0.01**0.25, 100: 0.01, 200: 0.001}),
        ("warmup_cosine", {0: 0.0, 5: 0.05, 10: 0.1, 105: 0.05, 200: 0.0}),
        ("onecycle", {0: 0.004, 30: 0.052, 60: 0.1, 130: (0.1 + 0.1 / 25e4) / 2, 200: 0.1 / 25e4}),
    ],
)
def test_each_schedule_at_hand_computed_steps(schedule, points):
    rate = train.make_schedule(schedule, 0.1, total_steps=200)
    for step, want in points.items():
        got = rate(step) if callable(rate) else rate
        assert float(got) == pytest.approx(want, rel=1e-4, abs=1e-9), (schedule, step)


def test_the_optimiser_follows_its_schedule_step_by_step():
    opt = train.make_optimizer("sgd", 0.1, schedule="step", total_steps=4)  # x0.1 at steps 2 and 3
    params, grads = jnp.zeros(3), jnp.ones(3)
    state = opt.init(params)
    seen = []
    for _ in range(4):
        updates, state = opt.update(grads, state, params)
        seen.append(float(updates[0]))
    np.testing.assert_allclose(seen, [-0.1, -0.1, -0.01, -0.001], rtol=1e-6)


def test_clip_norm_rescales_to_at_most_c_before_the_weight_decay():
    params = {"a": jnp.ones(3), "b": jnp.ones((2, 2))}
    big = {"a": jnp.full(3, 3.0), "b": jnp.full((2, 2), 4.0)}  # global norm sqrt(27 + 64) = sqrt(91)
    opt = train.make_optimizer("sgd", 1.0, clip_norm=2.0)
    updates, _ = opt.update(big, opt.init(params), params)
    assert float(jnp.sqrt(sum(jnp.sum(u**2) for u in jax.tree.leaves(updates)))) == pytest.approx(2.0, rel=1e-6)
    np.testing.assert_allclose(updates["a"], -3.0 * 2 / math.sqrt(91), rtol=1e-6)
    small = jax.tree.map(lambda g: g / 100, big)  # norm 0.095 < 2: untouched
    updates, _ = opt.update(small, opt.init(params), params)
    np.testing.assert_allclose(updates["b"], -0.04, rtol=1e-6)
    decayed = train.make_optimizer("sgd", 1.0, weight_decay=0.5, clip_norm=2.0)
    updates, _ = decayed.update(big, decayed.init(params), params)  # clip(g) + 0.5 w: the decay is not clipped
    np.testing.assert_allclose(updates["a"], -(3.0 * 2 / math.sqrt(91) + 0.5), rtol=1e-6)
    with pytest.raises(ValueError, match="clip_norm must be a finite number > 0; got 0"):
        train.make_optimizer("sgd", 1.0, clip_norm=0)


def test_adadelta_takes_zeilers_first_step():
    opt = train.make_optimizer("adadelta", 1.0)
    g = jnp.array([0.5, -2.0])
    updates, _ = opt.update(g, opt.init(jnp.zeros(2)), jnp.zeros(2))
    rho, eps = 0.9, 1e-6  # E[g^2] = (1 - rho) g^2; step = sqrt(E[dx^2] + eps) / sqrt(E[g^2] + eps) * g
    np.testing.assert_allclose(updates, -np.sqrt(eps) / np.sqrt((1 - rho) * g**2 + eps) * g, rtol=1e-5)


def test_the_new_flags_run_from_the_command_line_and_are_recorded(cli, tmp_path):
    args = ["--model", "mlp", "--dataset", "spirals", "--epochs", "2", "--workdir", str(tmp_path), "--no-progress"]
    recipe = ["--optimizer", "adadelta", "--lr", "1", "--schedule", "onecycle", "--clip-norm", "1"]
    code, out, err = cli(*args, *recipe, "--dtype", "bfloat16")
    assert code == 0, err
    assert "adadelta lr 1.0 clip norm 1.0, onecycle schedule, bfloat16 compute, 2 epochs" in out
    config = json.loads((tmp_path / "config.json").read_text())["config"]
    assert (config["optimizer"], config["schedule"], config["clip_norm"], config["dtype"], config["augment"]) == (
        "adadelta",
        "onecycle",
        1.0,
        "bfloat16",
        "none",
    )
    params = train.read_weights(tmp_path / "weights.safetensors")[0]
    assert {a.dtype for a in jax.tree.leaves(params)} == {np.dtype("float32")}
    code, _, err = cli(*args[:4], "--epochs", "3", *args[6:], *recipe, "--dtype", "bfloat16", "--resume")
    assert code == 2 and "resumes only with epochs=2" in one_line(err)  # (onecycle spans the run)
    code, _, err = cli(*args, "--overwrite", "--augment", "elastic")
    assert code == 2 and one_line(err).startswith("train.py: error: --augment elastic: mlp takes inputs of shape (2,)")


# --- mixed precision ------------------------------------------------------------------------------------------------


def _loss_and_grads(model: Model, params, state, x, y):
    def loss(p):
        return model.metrics(p, state, x, y, train=True)[0]["loss"].mean()

    return jax.jit(jax.value_and_grad(loss))(params)


def test_bfloat16_computes_close_to_float32_and_keeps_float32_parameters():
    model = _tiny_cnn()
    mixed = train.mixed_precision(model, "bfloat16")
    x = jnp.asarray(RNG.standard_normal((16, 8, 8, 1)), jnp.float32)
    y = jnp.asarray(np.arange(16) % 2, jnp.int32)
    params, state = model.init(jax.random.key(0))
    (l32, g32), (l16, g16) = _loss_and_grads(model, params, state, x, y), _loss_and_grads(mixed, params, state, x, y)
    assert l16.dtype == jnp.float32 and float(l16) == pytest.approx(float(l32), rel=2e-2) and float(l16) != float(l32)
    assert all(g.dtype == jnp.float32 for g in jax.tree.leaves(g16))
    for a, b in zip(jax.tree.leaves(g16), jax.tree.leaves(g32), strict=True):
        assert float(jnp.linalg.norm(a - b)) < 0.05 * float(jnp.linalg.norm(b))
    step = train.make_train_step(mixed, optax.sgd(0.1))
    s = train.create_train_state(mixed, optax.sgd(0.1), jax.random.key(0))
    losses = []
    for _ in range(5):
        s, m = step(s, x, y)
        losses.append(float(m["loss"]))
    assert losses[-1] < losses[0] and {a.dtype for a in jax.tree.leaves(s.params)} == {jnp.dtype("float32")}
    np.testing.assert_array_equal(mixed.apply(params, state, x)[0], model.apply(params, state, x)[0])  # (evaluation)
    assert train.mixed_precision(model, "float32") is model


def test_float16_loss_scaling_keeps_small_gradients_and_divides_the_scale_out():
    model = Model("lin", nn.dense(3, name="out"), (4,), head="linear")
    params, state = model.init(jax.random.key(0))
    x = jnp.asarray(RNG.standard_normal((8, 4)), jnp.float32)

    def grads(m: Model, tiny: float):  # a loss whose gradient at the outputs (1e-9 / 24) is below float16's range
        return jax.grad(lambda p: tiny * m.apply(p, state, x, train=True)[0].mean())(params)

    want = grads(model, 1e-9)
    scaled = grads(train.mixed_precision(model, "float16"), 1e-9)
    unscaled = grads(train.mixed_precision(model, "float16", loss_scale=1.0), 1e-9)
    np.testing.assert_allclose(scaled["w"], want["w"], rtol=2e-2, atol=1e-13)
    assert float(jnp.abs(want["w"]).max()) > 1e-11 and float(jnp.abs(unscaled["w"]).max()) == 0.0
    with pytest.raises(ValueError, match="dtype must be one of float32, bfloat16, float16; got 'int8'"):
        train.mixed_precision(model, "int8")
