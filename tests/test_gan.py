"""GAN and DCGAN: the transposed convolution (against lax.conv_transpose, as the adjoint of a convolution, and by
finite differences), the GAN losses and the optimal discriminator, the Fréchet distance and class histogram, and
the two-player training step through ``fit`` (the generated mean moves to the data's; resume is bitwise)."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from gradcheck import check_grad, x64
from helpers_train import leaves_equal

from jaxnets import losses, models, nn, train
from jaxnets.train import gan_step

# --- transposed convolution ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("padding", ["SAME", "VALID"])
@pytest.mark.parametrize(("kernel", "stride"), [(3, 1), (4, 2), (3, 2), (2, 3), (5, 3)])
def test_conv_transpose_matches_lax(kernel, stride, padding):
    rng = np.random.default_rng(kernel * 10 + stride)
    x = jnp.asarray(rng.standard_normal((2, 5, 4, 3)), jnp.float32)
    w = jnp.asarray(rng.standard_normal((kernel, kernel, 3, 6)), jnp.float32)
    got = nn.conv_transpose_general(x, w, (stride, stride), padding)
    # lax with transpose_kernel=True takes the forward convolution's kernel (I = our output, O = our input)
    want = jax.lax.conv_transpose(
        x,
        jnp.swapaxes(w, -1, -2),
        (stride, stride),
        padding,
        dimension_numbers=("NHWC", "HWIO", "NHWC"),
        transpose_kernel=True,
    )
    size = (lambda n: n * stride) if padding == "SAME" else (lambda n: (n - 1) * stride + kernel)
    assert got.shape == (2, size(5), size(4), 6)
    # (VALID with kernel < stride: lax pads its output to n * stride with rows no input reaches; PyTorch and we stop
    # at (n - 1) * stride + kernel)
    np.testing.assert_array_equal(want[:, got.shape[1] :], 0.0)
    np.testing.assert_array_equal(want[:, :, got.shape[2] :], 0.0)
    np.testing.assert_allclose(got, want[:, : got.shape[1], : got.shape[2]], rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize(
    ("kernel", "stride", "padding", "extra"), [(4, 2, 1, 0), (3, 2, 1, 1), (3, 1, 0, 0), (5, 3, 2, 2), (3, 2, 0, 1)]
)
def test_conv_transpose_is_the_adjoint_of_conv(kernel, stride, padding, extra):
    """<conv(u), v> = <u, conv_transpose(v)> for every u, v: conv_transpose is the vjp of the convolution with the
    same stride and padding; the output size is (n - 1) s - 2p + k + output_padding."""
    rng = np.random.default_rng(kernel + stride + padding)
    v = jnp.asarray(rng.standard_normal((2, 4, 5, 3)), jnp.float32)  # the transposed convolution's input
    w = jnp.asarray(rng.standard_normal((kernel, kernel, 3, 2)), jnp.float32)
    y = nn.conv_transpose_general(v, w, (stride, stride), padding, extra)
    out = [(n - 1) * stride - 2 * padding + kernel + extra for n in (4, 5)]
    assert y.shape == (2, *out, 2)

    def forward(u):  # conv from 2 channels to 3 with kernel swapaxes(w)
        return jax.lax.conv_general_dilated(
            u,
            jnp.swapaxes(w, -1, -2),
            (stride, stride),
            [(padding, padding)] * 2,
            dimension_numbers=("NHWC", "HWIO", "NHWC"),
        )

    u = jnp.zeros(y.shape, jnp.float32)
    assert forward(u).shape == v.shape
    _, vjp = jax.vjp(forward, u)
    np.testing.assert_allclose(y, vjp(v)[0], rtol=1e-5, atol=1e-5)


def test_conv_transpose_layer_gradients_match_finite_differences():
    layer = nn.conv_transpose(2, 3, stride=2, padding=1, output_padding=1)
    rng = np.random.default_rng(0)
    with x64():
        params, _, out = layer.init(jax.random.PRNGKey(0), (3, 3, 2))
        assert out == (6, 6, 2)
        params = jax.tree.map(lambda a: jnp.asarray(rng.standard_normal(a.shape)), params)
        x = jnp.asarray(rng.standard_normal((2, 3, 3, 2)))
        target = jnp.asarray(rng.standard_normal((2, 6, 6, 2)))

        def loss(args):
            y, _ = layer.apply(args["params"], {}, args["x"])
            return jnp.sum(jnp.tanh(y) * target)

        assert check_grad(loss, {"params": params, "x": x}) > 0


def test_conv_transpose_rejects_bad_padding():
    with pytest.raises(ValueError, match="padding must be an int in \\[0, kernel_size - 1 = 2\\]"):
        nn.conv_transpose_general(jnp.zeros((1, 3, 3, 1)), jnp.zeros((3, 3, 1, 1)), (2, 2), 3)
    with pytest.raises(ValueError, match="'SAME', 'VALID'"):
        nn.conv_transpose_general(jnp.zeros((1, 3, 3, 1)), jnp.zeros((3, 3, 1, 1)), (2, 2), "FULL")


# --- losses, the optimal discriminator, Fréchet distance, class histogram -----------------------------------------


def test_gan_losses_against_their_definitions():
    real, fake = jnp.array([[2.0], [-1.0]]), jnp.array([[0.5], [3.0]])
    d = 1 / (1 + np.exp(-np.array([2.0, -1.0]))), 1 / (1 + np.exp(-np.array([0.5, 3.0])))
    np.testing.assert_allclose(losses.discriminator_loss(real, fake), -np.log(d[0]) - np.log(1 - d[1]), rtol=1e-6)
    np.testing.assert_allclose(losses.generator_loss(fake), -np.log(d[1]), rtol=1e-6)
    np.testing.assert_allclose(losses.generator_loss(fake, saturating=True), np.log(1 - d[1]), rtol=1e-5)
    assert np.isfinite(losses.discriminator_loss(jnp.array([[-200.0]]), jnp.array([[200.0]]))).all()


def test_discriminator_learns_the_optimal_one_for_two_gaussians():
    """Goodfellow et al.'s proposition 1: against a fixed generator, the best discriminator is p_data / (p_data +
    p_g). For p_data = N(0, 1) and p_g = N(1, 1) its logit is log p_data - log p_g = 0.5 - x, which a logistic
    discriminator can represent exactly: training it on samples must find w = -1, b = 0.5, and its loss must reach
    2 log 2 - 2 JSD, the value at the optimum."""
    rng = np.random.default_rng(0)
    real = jnp.asarray(rng.standard_normal((20000, 1)), jnp.float32)
    fake = jnp.asarray(rng.standard_normal((20000, 1)) + 1.0, jnp.float32)

    def loss(p, r, f):
        return losses.discriminator_loss(r * p["w"] + p["b"], f * p["w"] + p["b"]).mean()

    params, opt = {"w": jnp.zeros(()), "b": jnp.zeros(())}, optax.adam(0.05)
    state = opt.init(params)

    @jax.jit
    def step(params, state):
        grads = jax.grad(loss)(params, real, fake)
        updates, state = opt.update(grads, state)
        return optax.apply_updates(params, updates), state

    for _ in range(400):
        params, state = step(params, state)
    assert abs(float(params["w"]) + 1.0) < 0.05 and abs(float(params["b"]) - 0.5) < 0.05
    optimal = float(loss({"w": jnp.float32(-1.0), "b": jnp.float32(0.5)}, real, fake))
    assert float(loss(params, real, fake)) <= optimal + 1e-4
    assert optimal < 2 * np.log(2)  # the distributions differ: the JSD is positive


def test_frechet_formula_on_hand_computed_cases():
    # 1-D: N(0, 1) vs N(3, 4): 9 + 1 + 4 - 2 sqrt(4) = 10
    fd = losses.gaussian_frechet_distance(jnp.array([0.0]), jnp.array([[1.0]]), jnp.array([3.0]), jnp.array([[4.0]]))
    np.testing.assert_allclose(fd, 10.0, rtol=1e-6)
    # 2-D diagonal: |(1, 2)|^2 + (1 + 9 - 2*3) + (4 + 1 - 2*2) = 5 + 4 + 1 = 10
    fd = losses.gaussian_frechet_distance(
        jnp.zeros(2), jnp.diag(jnp.array([1.0, 4.0])), jnp.array([1.0, 2.0]), jnp.diag(jnp.array([9.0, 1.0]))
    )
    np.testing.assert_allclose(fd, 10.0, rtol=1e-6)


def test_frechet_distance_against_scipy_sqrtm():
    scipy_linalg = pytest.importorskip("scipy.linalg")
    rng = np.random.default_rng(1)
    a = rng.standard_normal((400, 6)) @ rng.standard_normal((6, 6))
    b = rng.standard_normal((300, 6)) @ rng.standard_normal((6, 6)) + 0.5
    ca, cb = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    want = np.sum((a.mean(0) - b.mean(0)) ** 2) + np.trace(ca + cb - 2 * np.real(scipy_linalg.sqrtm(ca @ cb)))
    np.testing.assert_allclose(models.frechet_distance(a, b), want, rtol=1e-8)
    assert abs(models.frechet_distance(a, a)) < 1e-8
    with pytest.raises(ValueError, match="same d"):
        models.frechet_distance(a, b[:, :5])


def test_class_histogram():
    h = models.class_histogram(np.array([0, 1, 1, 2, 2, 2]), num_classes=3)
    assert h == {"counts": [1, 2, 3], "classes_present": 3, "max_min_ratio": 3.0}
    h = models.class_histogram(np.array([0, 0, 1]), num_classes=3)
    assert h["classes_present"] == 2 and h["max_min_ratio"] == float("inf")


def test_feature_classifier_features_are_the_penultimate_layer():
    model = models.feature_classifier((8, 8, 1), num_classes=3, width=5)
    params, state = model.init(jax.random.PRNGKey(0))
    x = np.random.default_rng(0).standard_normal((7, 8, 8, 1)).astype(np.float32)
    feats, classes = models.classifier_features(model, params, state, x, batch_size=3)
    logits, _ = model.apply(params, state, jnp.asarray(x))
    assert feats.shape == (7, 5) and (feats >= 0).all()
    np.testing.assert_allclose(
        feats @ np.asarray(params["logits"]["w"]) + np.asarray(params["logits"]["b"]), logits, rtol=1e-4, atol=1e-5
    )
    np.testing.assert_array_equal(classes, np.argmax(logits, -1))


# --- the models and the two-player step ----------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["gan", "dcgan"])
def test_generator_and_discriminator_shapes(name):
    model = models.build(
        name, input_shape=(8, 8, 1), latent=4, **({"features": 4} if name == "dcgan" else {"hidden": (8, 16)})
    )
    params, state = jax.jit(model.init)(jax.random.PRNGKey(0))
    assert set(params) == {"generator", "discriminator"}
    images = jax.jit(models.gan_sample, static_argnums=(0, 4))(model, params, state, jax.random.PRNGKey(1), 3)
    assert images.shape == (3, 8, 8, 1) and float(jnp.max(jnp.abs(images))) <= 1.0
    metrics, _ = jax.jit(lambda p, s, x: model.metrics(p, s, x, None, key=jax.random.PRNGKey(2)))(params, state, images)
    assert set(metrics) == {"loss", "generator_loss", "d_real", "d_fake"}
    assert all(v.shape == (3,) for v in metrics.values())


def test_adversarial_parts_refuses_another_model():
    with pytest.raises(ValueError, match="is not a GAN"):
        models.adversarial_parts(models.build("mlp", input_shape=(4,), num_classes=2))


@functools.cache
def _toy_gan():
    return models.gan(input_shape=(2,), latent=2, hidden=(16, 16), dropout=0.0)


@functools.cache
def _toy_step() -> train.TrainStep:  # (one step object: fit's compiled forms are reused across the tests)
    return gan_step(
        _toy_gan(), generator_optimizer=optax.adam(2e-3, b1=0.5), discriminator_optimizer=optax.adam(2e-3, b1=0.5)
    )


@pytest.mark.parametrize("player", ["discriminator", "generator"])
def test_each_players_loss_falls_with_the_other_frozen(player):
    """With the other player's learning rate 0, a few steps lower the trained player's own loss on a fixed batch."""
    model = models.dcgan((8, 8, 1), latent=4, features=4)
    frozen, trained = optax.sgd(0.0), optax.adam(2e-3)
    step = gan_step(
        model,
        generator_optimizer=trained if player == "generator" else frozen,
        discriminator_optimizer=trained if player == "discriminator" else frozen,
    )
    state = step.init(jax.random.PRNGKey(0))
    x = jnp.asarray(np.random.default_rng(0).uniform(-1, 1, (16, 8, 8, 1)), jnp.float32)
    update = jax.jit(lambda s: step.update(s, (x, None), jax.random.PRNGKey(5)))  # the same z every step
    first = None
    for _ in range(15):
        state, metrics = update(state)
        first = first if first is not None else float(metrics[f"{player}_loss"])
    assert float(metrics[f"{player}_loss"]) < first - 0.05


def _toy_data(n: int = 512) -> np.ndarray:
    """2-D points around (0.6, -0.4), inside the generator's tanh range."""
    return (np.random.default_rng(0).standard_normal((n, 2)) * 0.1 + np.array([0.6, -0.4])).astype(np.float32)


def _fit_toy(epochs: int, **run) -> train.FitResult:
    return train.fit(
        _toy_step(),
        _toy_data(),
        None,
        epochs=epochs,
        batch_size=64,
        seed=1,
        shardings=None,
        progress=False,
        log=lambda s: None,
        **run,
    )


def _generated_mean(result: train.FitResult) -> np.ndarray:
    return np.asarray(
        models.gan_sample(_toy_gan(), result.state.params, result.state.model_state, jax.random.PRNGKey(9), 2000)
    ).mean(0)


def test_gan_through_fit_moves_the_generated_mean_to_the_datas():
    target = np.array([0.6, -0.4])
    before = np.linalg.norm(_generated_mean(_fit_toy(1)) - target)  # (one epoch: 8 steps)
    after_result = _fit_toy(25)
    after = np.linalg.norm(_generated_mean(after_result) - target)
    assert after < 0.1 < before / 3, (before, after)
    record = after_result.history[-1]
    assert {"train_discriminator_loss", "train_generator_loss", "train_d_real", "train_d_fake"} <= set(record)


def test_gan_resume_is_bitwise(tmp_path):
    straight = _fit_toy(3, workdir=tmp_path / "a")
    _fit_toy(1, workdir=tmp_path / "b")
    resumed = _fit_toy(3, workdir=tmp_path / "b", resume=True)
    assert leaves_equal(straight.state, resumed.state)
    assert [r["train_generator_loss"] for r in resumed.history] == [r["train_generator_loss"] for r in straight.history]


@pytest.mark.parametrize("name", ["gan", "dcgan"])
def test_both_players_gradients_match_finite_differences(name):
    """The discriminator's and the generator's losses (``metrics``, evaluation mode) differentiated with respect to
    both players' parameters, in float64."""
    small = {"hidden": (3, 4), "dropout": 0.0} if name == "gan" else {"features": 2}
    model = models.build(name, input_shape=(4, 4, 1), latent=2, **small)
    rng = np.random.default_rng(0)
    with x64():
        params, state = model.init(jax.random.PRNGKey(0))
        params = jax.tree.map(lambda a: jnp.asarray(rng.standard_normal(a.shape) * 0.5), params)
        state = jax.tree.map(lambda a: jnp.asarray(a, jnp.float64), state)
        x = jnp.asarray(rng.uniform(-1, 1, (3, 4, 4, 1)))

        def loss(p):
            metrics, _ = model.metrics(p, state, x, None, key=jax.random.PRNGKey(1))
            return jnp.mean(metrics["loss"]) + jnp.mean(metrics["generator_loss"])

        assert check_grad(loss, params) > 0
