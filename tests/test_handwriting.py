"""Handwriting-style generation (Graves 2013): the bivariate mixture NLL against scipy and float64 formulas, sampling
(bias, shapes), the Hershey stroke data, and the model's loss falling."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from gradcheck import check_grad, x64
from helpers import model_params
from helpers_train import in_process_cli, one_line
from scipy import stats

from jaxnets import data, models, viz
from jaxnets.cli import sample
from jaxnets.cli import train as train_cli

pytest.importorskip("HersheyFonts", reason="the stroke data needs the Hershey-Fonts package")


def _bivariate(rng, b=4, k=3):
    return (
        rng.standard_normal((b, k)),
        rng.standard_normal((b, k, 2)),
        0.3 * rng.standard_normal((b, k, 2)),
        2.0 * rng.standard_normal((b, k)),
        rng.standard_normal((b, 2)),
    )


def test_bivariate_nll_equals_scipy_mixture_of_correlated_gaussians():
    logits, means, log_scales, rho_logits, y = _bivariate(np.random.default_rng(0))
    pi = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    s, rho = np.exp(log_scales), np.tanh(rho_logits)
    want = []
    for i in range(len(y)):
        density = 0.0
        for k in range(logits.shape[1]):
            c = rho[i, k] * s[i, k, 0] * s[i, k, 1]
            cov = [[s[i, k, 0] ** 2, c], [c, s[i, k, 1] ** 2]]
            density += pi[i, k] * stats.multivariate_normal.pdf(y[i], means[i, k], cov)
        want.append(-np.log(density))
    got = jax.jit(models.bivariate_nll)(
        *(jnp.asarray(a, jnp.float32) for a in (logits, means, log_scales, rho_logits, y))
    )
    np.testing.assert_allclose(got, want, rtol=1e-5)


def test_bivariate_nll_matches_graves_formula_in_float64_at_extreme_correlations():
    """Graves' eq. 24-25 directly in float64; rho logits up to 8 (1 - rho^2 ~ 5e-7) and a target far out."""
    rng = np.random.default_rng(1)
    logits, means, log_scales, _, y = _bivariate(rng, b=3, k=2)
    rho_logits = np.array([[8.0, -6.0], [0.0, 3.0], [-8.0, 1.0]])
    y[2] = [40.0, -40.0]
    s1, s2 = np.exp(log_scales[..., 0]), np.exp(log_scales[..., 1])
    rho = np.tanh(rho_logits)
    z1, z2 = (y[:, None, 0] - means[..., 0]) / s1, (y[:, None, 1] - means[..., 1]) / s2
    z = z1**2 + z2**2 - 2 * rho * z1 * z2
    log_n = -z / (2 * (1 - rho**2)) - np.log(2 * np.pi * s1 * s2 * np.sqrt(1 - rho**2))
    log_pi = logits - np.log(np.exp(logits).sum(1, keepdims=True))
    top = (log_pi + log_n).max(1, keepdims=True)
    want = -(top[:, 0] + np.log(np.exp(log_pi + log_n - top).sum(1)))
    got = jax.jit(models.bivariate_nll)(
        *(jnp.asarray(a, jnp.float32) for a in (logits, means, log_scales, rho_logits, y))
    )
    np.testing.assert_allclose(got, want, rtol=2e-4)
    assert np.isfinite(got).all()


def test_sample_bivariate_moments_and_bias():
    """Draws from one correlated component have its mean, scales and correlation; bias b shrinks the scales by
    e^-b and sharpens the weights to softmax((1 + b) logits)."""
    n = 50_000
    draw = jax.jit(models.sample_bivariate)
    logits = jnp.tile(jnp.array([[0.0, -30.0]]), (n, 1))
    means = jnp.tile(jnp.array([[[1.0, -2.0], [50.0, 50.0]]]), (n, 1, 1))
    log_scales = jnp.tile(jnp.log(jnp.array([[[0.5, 2.0], [1.0, 1.0]]])), (n, 1, 1))
    rho_logits = jnp.tile(jnp.array([[jnp.arctanh(0.6), 0.0]]), (n, 1))
    draws = np.asarray(draw(jax.random.key(0), logits, means, log_scales, rho_logits, 0.0))
    np.testing.assert_allclose(draws.mean(0), [1.0, -2.0], atol=0.02)
    np.testing.assert_allclose(draws.std(0), [0.5, 2.0], rtol=0.01)
    np.testing.assert_allclose(np.corrcoef(draws.T)[0, 1], 0.6, atol=0.01)
    biased = np.asarray(draw(jax.random.key(1), logits, means, log_scales, rho_logits, 1.0))
    np.testing.assert_allclose(biased.std(0), np.array([0.5, 2.0]) / np.e, rtol=0.01)
    two = jnp.tile(jnp.array([[0.0, np.log(3.0)]]), (n, 1))  # weights 1/4, 3/4 -> with b = 1: 1/10, 9/10
    picked = np.asarray(draw(jax.random.key(2), two, means, log_scales - 10, rho_logits, 1.0))
    np.testing.assert_allclose((picked[:, 0] > 25).mean(), 0.9, atol=0.005)


def test_strokes_are_seeded_masked_and_split_by_sample(tmp_path):
    ds = data.hershey_strokes(samples=5, chars="AO", test_fraction=0.2, seed=3)
    again = data.hershey_strokes(samples=5, chars="AO", test_fraction=0.2, seed=3)
    np.testing.assert_array_equal(ds.train_y, again.train_y)
    assert ds.train_x.shape == (8, data.strokes.LENGTH, 4) and ds.test_x.shape == (2, data.strokes.LENGTH, 4)
    assert ds.num_classes == 2 and ds.chars == "AO"
    np.testing.assert_array_equal(ds.train_x[:, 0, 3], [0, 0, 0, 0, 1, 1, 1, 1])  # glyph ids
    valid = ds.train_y[..., 3]
    n = int(valid[0].sum())
    assert valid[0, :n].all() and not valid[0, n:].any() and not ds.train_y[0, n:, :3].any()
    np.testing.assert_array_equal(ds.train_x[:, 1:, :3], ds.train_y[:, :-1, :3])  # x = y one step late
    np.testing.assert_array_equal(ds.train_x[:, 0, :3], [[0, 0, 1]] * 8)
    # 'A' is three polylines: three pen-ups, the last at its last point; drawn back, they are three lines
    y = ds.train_y[0]
    assert y[:n, 2].sum() == 3 and y[n - 1, 2] == 1
    assert len(data.to_polylines(y, valid[0])) == 3
    assert viz.plot_strokes(tmp_path / "a.png", ds.train_y[:2], valid[:2], ["A", "A"]).stat().st_size > 0
    with pytest.raises(ValueError, match="length 10 cannot hold 'A'"):
        data.hershey_strokes(samples=2, chars="A", length=10)


def test_glyph_points_resample_segments_and_flag_pen_ups():
    pts = data.glyph_points([[(0, 0), (10, 0)], [(0, 5), (0, 6)]], max_step=4.0)
    np.testing.assert_allclose(pts[:, :2], [[0, 0], [10 / 3, 0], [20 / 3, 0], [10, 0], [0, 5], [0, 6]])
    np.testing.assert_array_equal(pts[:, 2], [0, 0, 0, 1, 0, 1])


def _tiny(components=3, layers=2):
    """A tiny handwriting model on two glyphs, with parameters drawn without running its initialisers (fast)."""
    ds = data.hershey_strokes(samples=6, chars="LO", test_fraction=0.34, seed=0)
    model = models.build("handwriting", ds.input_shape, ds.num_classes, hidden=16, layers=layers, components=components)
    params, state = model_params(model, np.random.default_rng(0))
    return ds, model, params, state


def test_objective_masks_padding_and_sampling_shapes():
    ds, model, params, state = _tiny()
    metrics = jax.jit(lambda x, y: model.metrics(params, state, x, y)[0])
    x, y = jnp.asarray(ds.train_x[:2]), jnp.asarray(ds.train_y[:2])
    m = metrics(x, y)
    np.testing.assert_allclose(m["points"], ds.train_y[:2, :, 3].sum(1))
    junk = y.at[:, -1, :3].set(1e3)  # padding (valid = 0) changes nothing
    np.testing.assert_allclose(metrics(x, junk)["nll"], m["nll"], rtol=1e-6)
    strokes, valid = models.sample_strokes(model, params, jnp.array([0, 1, 1]), jax.random.key(1), bias=2.0, steps=7)
    assert strokes.shape == (3, 7, 3) and valid.shape == (3, 7) and valid[:, 0].all()
    assert set(np.unique(np.asarray(strokes[..., 2]))) <= {0.0, 1.0}
    with pytest.raises(ValueError, match="bias must be >= 0"):
        models.sample_strokes(model, params, jnp.array([0]), jax.random.key(1), bias=-1.0)
    with pytest.raises(ValueError, match=r"integer glyph ids in \[0, 2\)"):
        models.sample_strokes(model, params, np.array([2]), jax.random.key(1))
    with pytest.raises(ValueError, match=r"takes steps of shape \(time, 4\)"):
        models.handwriting((40, 3))


def test_objective_gradient_matches_finite_differences():
    """The whole objective (the packed head, the masked offset, pen-up and end terms) in float64."""
    model = models.handwriting((5, 4), num_classes=2, hidden=3, layers=1, components=2)
    rng = np.random.default_rng(5)
    with x64():
        params, state = model_params(model, rng, dtype=jnp.float64)
        x = np.concatenate([rng.standard_normal((3, 5, 3)), rng.integers(0, 2, (3, 5, 1))], axis=-1)
        y = np.concatenate([rng.standard_normal((3, 5, 2)), rng.integers(0, 2, (3, 5, 1)), np.ones((3, 5, 1))], -1)
        y[0, 3:, 3] = 0.0  # a shorter sequence
        x, y = jnp.asarray(x), jnp.asarray(y)
        check_grad(lambda p: jnp.mean(model.metrics(p, state, x, y)[0]["loss"]), params, max_coords_per_leaf=8)


def test_handwriting_loss_falls():
    """Adam with Graves' gradient clipping on 8 sequences: the loss per point falls by over a nat in 30 steps."""
    ds, model, params, state = _tiny(components=2, layers=1)
    x, y = jnp.asarray(ds.train_x), jnp.asarray(ds.train_y)
    opt = optax.chain(optax.clip_by_global_norm(1.0), optax.adam(1e-2))

    def loss(p):
        return jnp.mean(model.metrics(p, state, x, y)[0]["loss"])

    @jax.jit
    def step(p, o):
        value, grads = jax.value_and_grad(loss)(p)
        updates, o = opt.update(grads, o, p)
        return optax.apply_updates(p, updates), o, value

    opt_state, losses = opt.init(params), []
    for _ in range(30):
        params, opt_state, value = step(params, opt_state)
        losses.append(float(value))
    assert np.isfinite(losses).all() and losses[-1] < losses[0] - 1.0, losses


def test_a_trained_run_draws_its_glyphs_from_the_sample_command(capsys, monkeypatch, tmp_path):
    cli = in_process_cli(capsys, monkeypatch)
    run = ["--workdir", str(tmp_path / "run"), "--no-progress", "--model-arg", "hidden=8", "--batch-size", "512"]
    code, _, err = cli(train_cli.main, "--model", "handwriting", "--dataset", "hershey", "--epochs", "1", *run)
    assert code == 0, err
    assert (tmp_path / "run" / "strokes.png").stat().st_size > 0  # the run's own picture
    png = tmp_path / "a.png"
    code, out, err = cli(sample.main, "--workdir", str(tmp_path / "run"), "--prompt", "A7", "--out", str(png))
    assert code == 0 and out.strip() == f"wrote {png}" and png.stat().st_size > 0, err
    code, _, err = cli(sample.main, "--workdir", str(tmp_path / "run"), "--prompt", "A", "--bias", "-1")
    assert code == 2 and "--bias must be >= 0" in one_line(err)
    code, _, err = cli(sample.main, "--workdir", str(tmp_path / "run"), "--prompt", "a")  # glyphs: A-Z, 0-9
    assert code == 2 and one_line(err).endswith("characters not in the vocabulary: 'a'")
