"""Autoencoders: shapes, the loss pieces (Bernoulli NLL, Gaussian KL, reparameterisation), corruption in training
only, finite-difference gradients, reconstructions as PNG, the loss falling on tiny data, and train.run's hook."""

from __future__ import annotations

import importlib

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from gradcheck import check_grad, x64
from helpers import model_params

import jaxnets
from jaxnets import data, losses, models, nn, train, viz

SHAPE = (8, 8, 1)
SMALL = {  # reduced configurations on 8x8 images
    "autoencoder": dict(hidden=(12, 6), code=3),
    "dae": dict(hidden=(12,), code=4),
    "conv_autoencoder": dict(features=(3, 4), code=3, strategy="xla"),
    "conv_dae": dict(features=(3,), code=4, corruption="gaussian", level=0.3, strategy="xla"),
    "vae": dict(hidden=(10,), latent=3),
}


def prototypes(n: int = 128, seed: int = 0, shape=SHAPE) -> np.ndarray:
    """Tiny data: 4 random binary patterns with 5% of the pixels flipped, float32 in {0, 1}."""
    rng = np.random.default_rng(seed)
    protos = rng.random((4, *shape)) < 0.4
    x = protos[rng.integers(0, 4, n)] ^ (rng.random((n, *shape)) < 0.05)
    return x.astype(np.float32)


def build(name: str, **overrides) -> jaxnets.Model:
    return jaxnets.build(name, SHAPE, 10, **{**SMALL[name], **overrides})


def init(model: jaxnets.Model, seed: int = 0):
    """Parameters and state at the model's own initialisation, compiled as one function (op-by-op is slow)."""
    return jax.jit(model.init)(jax.random.key(seed))


@pytest.mark.parametrize("name", sorted(SMALL))
def test_shapes_and_metrics(name):
    model = build(name)
    params, state = jax.eval_shape(model.init, jax.random.key(0))  # shapes only: nothing is compiled
    x, y = jax.ShapeDtypeStruct((5, *SHAPE), jnp.float32), jax.ShapeDtypeStruct((5,), jnp.int32)
    logits = jax.eval_shape(lambda p, s, x: model.apply(p, s, x)[0], params, state, x)
    metrics = jax.eval_shape(
        lambda p, s, x, y: model.metrics(p, s, x, y, key=jax.random.key(1), train=True)[0], params, state, x, y
    )
    evaluated = jax.eval_shape(lambda p, s, x, y: model.metrics(p, s, x, y)[0], params, state, x, y)
    assert logits.shape == x.shape
    expected = {"loss", "reconstruction", "kl"} if name == "vae" else {"loss", "squared_error"}
    assert set(metrics) == set(evaluated) == expected
    assert all(v.shape == (5,) for v in [*metrics.values(), *evaluated.values()])
    with pytest.raises(ValueError, match=r"expects input of shape \(batch, 8, 8, 1\)"):
        jax.eval_shape(
            lambda p, s: model.metrics(p, s, jnp.zeros((2, 8, 8, 2)), jnp.zeros(2, jnp.int32)), params, state
        )


def test_mnist_shapes_and_parameter_names():
    model = jaxnets.build("autoencoder")
    params, _ = jax.eval_shape(model.init, jax.random.key(0))
    shapes = jax.tree.map(lambda a: a.shape, params)
    assert set(params) == {"encoder", "decoder"}
    assert shapes["encoder"]["hidden1"]["w"] == (784, 1000) and shapes["encoder"]["code"]["w"] == (250, 30)
    assert shapes["decoder"]["hidden1"]["w"] == (30, 250) and shapes["decoder"]["out"]["w"] == (1000, 784)
    conv = jaxnets.build("conv_autoencoder")
    p, s = jax.eval_shape(conv.init, jax.random.key(0))
    out = jax.eval_shape(
        lambda p, s, x: conv.apply(p, s, x)[0], p, s, jax.ShapeDtypeStruct((2, 28, 28, 1), jnp.float32)
    )
    assert out.shape == (2, 28, 28, 1) and p["encoder"]["code"]["w"].shape == (7 * 7 * 32, 32)
    vae = jaxnets.build("vae")
    p, _ = jax.eval_shape(vae.init, jax.random.key(0))
    assert p["encoder"]["heads"]["mean"]["w"].shape == (500, 20) and p["decoder"]["out"]["w"].shape == (500, 784)
    with pytest.raises(ValueError, match="multiples of 4"):
        jaxnets.build("conv_autoencoder", (30, 30, 1))
    with pytest.raises(ValueError, match="unknown corruption 'salt'"):
        jaxnets.build("dae", corruption="salt")


def test_upsample_repeats_pixels():
    layer = nn.upsample(2)
    _, _, out = layer.init(jax.random.key(0), (2, 3, 1))
    x = jnp.arange(6.0).reshape(1, 2, 3, 1)
    y, _ = layer.apply({}, {}, x)
    assert out == (4, 6, 1) and y.shape == (1, 4, 6, 1)
    np.testing.assert_array_equal(y[0, :, :, 0], np.kron(np.arange(6.0).reshape(2, 3), np.ones((2, 2))))


def test_bernoulli_nll_is_binary_cross_entropy_summed_per_example():
    rng = np.random.default_rng(0)
    logits, x = rng.standard_normal((3, 4, 4, 1)), rng.uniform(0, 1, (3, 4, 4, 1))
    p = 1 / (1 + np.exp(-logits))
    expected = -(x * np.log(p) + (1 - x) * np.log(1 - p)).reshape(3, -1).sum(1)
    np.testing.assert_allclose(losses.bernoulli_nll(jnp.asarray(logits), jnp.asarray(x)), expected, rtol=1e-5)
    np.testing.assert_allclose(
        losses.squared_error(jnp.asarray(logits), jnp.asarray(x)), ((p - x) ** 2).reshape(3, -1).sum(1), rtol=1e-5
    )
    assert np.isfinite(float(losses.bernoulli_nll(jnp.full((1, 2), 100.0), jnp.zeros((1, 2)))[0]))  # stable


def test_gaussian_kl_closed_form_against_monte_carlo():
    mean, log_var = jnp.asarray([[0.5, -1.0, 0.0]]), jnp.asarray([[0.2, -0.7, 0.0]])
    kl = float(losses.gaussian_kl(mean, log_var)[0])
    expected = 0.5 * float(jnp.sum(jnp.exp(log_var) + mean**2 - 1 - log_var))
    assert kl == pytest.approx(expected)
    z = models.reparameterise(
        jnp.broadcast_to(mean, (50_000, 3)), jnp.broadcast_to(log_var, (50_000, 3)), jax.random.key(0)
    )
    log_q = jax.scipy.stats.norm.logpdf(z, mean, jnp.exp(0.5 * log_var)).sum(1)
    log_p = jax.scipy.stats.norm.logpdf(z).sum(1)
    assert float(jnp.mean(log_q - log_p)) == pytest.approx(kl, abs=0.03)  # E_q[log q - log p]
    assert float(losses.gaussian_kl(jnp.zeros((1, 4)), jnp.zeros((1, 4)))[0]) == 0.0  # q = prior


def test_reparameterisation_samples_and_differentiates():
    mean, log_var = jnp.asarray([1.0, -2.0]), jnp.asarray([0.0, np.log(0.25)])
    z = models.reparameterise(
        jnp.broadcast_to(mean, (100_000, 2)), jnp.broadcast_to(log_var, (100_000, 2)), jax.random.key(3)
    )
    np.testing.assert_allclose(z.mean(0), mean, atol=0.01)
    np.testing.assert_allclose(z.std(0), [1.0, 0.5], atol=0.01)
    key = jax.random.key(4)
    eps = jax.random.normal(key, (2,))
    dz_dmean = jax.jacobian(lambda m: models.reparameterise(m, log_var, key))(mean)
    dz_dlogvar = jax.jacobian(lambda lv: models.reparameterise(mean, lv, key))(log_var)
    np.testing.assert_allclose(dz_dmean, np.eye(2), atol=1e-6)
    np.testing.assert_allclose(jnp.diag(dz_dlogvar), 0.5 * jnp.exp(0.5 * log_var) * eps, rtol=1e-5)


def test_vae_loss_is_reconstruction_plus_kl_and_fixed_by_the_key():
    model = build("vae")
    params, state = init(model)
    x, y = jnp.asarray(prototypes(6)), jnp.zeros(6, jnp.int32)

    @jax.jit
    def everything(x):
        def metrics(key):
            return model.metrics(params, state, x, y, key=key, train=True)[0]

        evaluated = model.metrics(params, state, x, y)[0]
        return (
            metrics(jax.random.key(1)),
            metrics(jax.random.key(1)),
            metrics(jax.random.key(2)),
            evaluated,
            models.vae_encode(model, params, state, x),
            models.vae_sample(model, params, state, jax.random.key(5), 4),
        )

    a, b, c, evaluated, (mean, log_var), samples = everything(x)
    np.testing.assert_allclose(a["loss"], a["reconstruction"] + a["kl"], rtol=1e-6)
    np.testing.assert_array_equal(a["loss"], b["loss"])
    np.testing.assert_array_equal(a["kl"], c["kl"])  # the KL is closed form: no noise
    assert not np.allclose(a["reconstruction"], c["reconstruction"])
    np.testing.assert_array_equal(everything(x)[3]["loss"], evaluated["loss"])  # evaluation: a fixed key
    assert mean.shape == log_var.shape == (6, 3)
    np.testing.assert_allclose(a["kl"], losses.gaussian_kl(mean, log_var), rtol=1e-6)
    assert samples.shape == (4, *SHAPE) and float(samples.min()) >= 0 and float(samples.max()) <= 1


@pytest.mark.parametrize("kind", ["mask", "gaussian"])
def test_corruption_in_training_only(kind):
    model = build("dae", corruption=kind, level=0.3)
    clean = build("autoencoder", hidden=(12,), code=4)
    params, state = init(model)
    x, y, key = jnp.asarray(prototypes(64)), jnp.zeros(64, jnp.int32), jax.random.key(7)
    noisy = models.corrupt(x, jax.random.split(key)[0], kind, 0.3)  # the objective splits the key the same way

    @jax.jit
    def everything(x, noisy):
        def apply(x):
            return model.apply(params, state, x)[0]

        def metrics(m, train):
            return m.metrics(params, state, x, y, key=key, train=train)[0]["loss"]

        return (
            metrics(model, False),
            metrics(clean, False),
            metrics(model, True),
            losses.bernoulli_nll(apply(x), x),
            losses.bernoulli_nll(apply(noisy), x),
        )

    evaluated, evaluated_clean, trained, nll_clean, nll_noisy = everything(x, noisy)
    np.testing.assert_allclose(evaluated, nll_clean, rtol=1e-6)  # evaluation: clean input
    np.testing.assert_allclose(evaluated, evaluated_clean, rtol=1e-6)
    np.testing.assert_allclose(trained, nll_noisy, rtol=1e-6)  # training: corrupted input, clean target
    assert not np.allclose(trained, evaluated)
    if kind == "mask":
        on = np.asarray(x) == 1
        assert 0.25 < 1 - float(np.asarray(noisy)[on].mean()) < 0.35  # about 30% of the pixels zeroed
        assert set(np.unique(np.asarray(noisy))) <= {0.0, 1.0}
    else:
        assert float(jnp.std(noisy - x)) == pytest.approx(0.3, rel=0.05)
    with pytest.raises(ValueError, match="key"):
        jax.eval_shape(lambda x: model.metrics(params, state, x, y, train=True), x)


@pytest.mark.parametrize("name", sorted(SMALL))
def test_gradients_match_finite_differences(name):
    """The batch-mean loss is a deterministic function of the parameters and the input for a fixed key (the
    corruption and z's noise come from it)."""
    model = build(name)
    with x64():
        rng = np.random.default_rng(1)
        params, state = model_params(model, rng, jnp.float64)
        x = jnp.asarray(rng.uniform(0.05, 0.95, (2, *SHAPE)))
        y = jnp.zeros(2, jnp.int32)

        def loss(args):
            p, xx = args
            metrics, _ = model.metrics(p, state, xx, y, key=jax.random.key(5), train=True)
            return jnp.mean(metrics["loss"])

        assert check_grad(loss, (params, x), max_coords_per_leaf=16, n_directions=2) >= 16


def test_reconstructions_png(tmp_path):
    x = prototypes(6)
    path = viz.save_reconstructions(tmp_path / "r.png", x, 1 - x, inputs=x * 0.5, title="t")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert viz.save_reconstructions(tmp_path / "flat.png", x.reshape(6, -1), x.reshape(6, -1)).exists()
    model = build("vae")  # (a denoising model's images: test_train_run_... below)
    params, state = init(model)
    paths = viz.write_images(model, params, state, x, tmp_path / "vae", n=4)
    assert [p.name for p in paths] == ["reconstructions.png", "samples.png"]
    assert all(p.stat().st_size > 1000 for p in paths)
    recon = models.reconstruct(model, params, state, x)
    assert recon.shape == x.shape and float(recon.min()) >= 0 and float(recon.max()) <= 1
    assert viz.write_images(jaxnets.build("mlp", SHAPE, 3), None, None, x, tmp_path / "mlp") == []  # not an AE


@pytest.mark.parametrize("name", ["autoencoder", "conv_dae", "vae"])
def test_loss_falls_on_tiny_data(name):
    x = prototypes(256)
    model = build(name)
    result = train.fit(
        model,
        x,
        np.zeros(len(x), np.int32),
        optimizer=optax.adam(1e-2),
        epochs=8,
        batch_size=32,
        seed=0,
        progress=False,
        log=lambda _: None,
    )
    first, last = result.history[0], result.history[-1]
    assert last["train_loss"] < 0.85 * first["train_loss"], (first, last)


def test_train_run_uses_unit_pixels_and_writes_reconstructions(tmp_path, monkeypatch):
    """train.py's path end to end on a stand-in dataset of 8x8 uint8 images: the model's defaults ([0, 1] pixels,
    Adam), a non-classifier accepted by build_for, and reconstructions.png in the workdir."""
    images = (prototypes(96) * 255).astype(np.uint8)
    labels = np.zeros(96, np.int32)
    tiny = data.Dataset("tiny", images[:64], labels[:64], images[64:], labels[64:], 10)
    monkeypatch.setattr(data, "load_raw", lambda name, **_: tiny)
    seen = {}
    run_module = importlib.import_module("jaxnets.train.config")
    real_fit = run_module.fit

    def spy(model, train_x, *args, **kwargs):
        seen["range"] = (float(train_x.min()), float(train_x.max()))
        return real_fit(model, train_x, *args, **kwargs)

    monkeypatch.setattr(run_module, "fit", spy)
    lines = []
    result = train.run(
        train.TrainConfig(model="dae", dataset="tiny", epochs=3, batch_size=16, lr=1e-2, workdir=str(tmp_path)),
        progress=False,
        log=lines.append,
    )
    assert seen["range"] == (0.0, 1.0)
    assert lines[0].startswith("dae on tiny: adam lr 0.01")  # the autoencoders' default optimiser
    first, last = result.history[0], result.history[-1]
    assert {"train_loss", "train_squared_error", "test_loss", "test_squared_error"} <= set(last)
    assert last["train_loss"] < first["train_loss"] and last["test_loss"] < first["test_loss"]
    assert (tmp_path / "reconstructions.png").exists() and (tmp_path / "curves.png").exists()
    assert any("reconstructions.png" in line for line in lines)
