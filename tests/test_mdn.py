"""Mixture density networks: the NLL against scipy, K = 1 against the Gaussian NLL, moments, gradients, the data."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from gradcheck import check_grad, x64
from helpers import random_like
from scipy import stats

import jaxnets
from jaxnets import data, losses, models


def _mixture(rng, b=5, k=3, d=2):
    return (
        rng.standard_normal((b, k)),
        rng.standard_normal((b, k, d)),
        0.3 * rng.standard_normal((b, k, d)),
        rng.standard_normal((b, d)),
    )


def test_mdn_nll_equals_scipy_mixture_density():
    logits, means, log_scales, y = _mixture(np.random.default_rng(0))
    pi = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    want = [
        -np.log(sum(pi[i, k] * np.prod(stats.norm.pdf(y[i], means[i, k], np.exp(log_scales[i, k]))) for k in range(3)))
        for i in range(5)
    ]
    got = losses.mdn_nll(*(jnp.asarray(a, jnp.float32) for a in (logits, means, log_scales, y)))
    np.testing.assert_allclose(got, want, rtol=1e-5)


def test_mdn_nll_is_stable_far_from_every_component():
    got = losses.mdn_nll(jnp.zeros((1, 2)), jnp.zeros((1, 2, 1)), jnp.full((1, 2, 1), -3.0), jnp.full((1, 1), 50.0))
    # the density underflows (exp(-1e5)) but its log is exact: 0.5 (50 e^3)^2 - 3 + 0.5 log(2 pi)
    np.testing.assert_allclose(got, [0.5 * (50 * np.exp(3.0)) ** 2 - 3 + 0.5 * np.log(2 * np.pi)], rtol=1e-6)


def test_one_component_is_the_gaussian_nll():
    _, means, log_scales, y = _mixture(np.random.default_rng(1), k=1)
    a = losses.mdn_nll(jnp.zeros((5, 1)), jnp.asarray(means), jnp.asarray(log_scales), jnp.asarray(y))
    b = losses.gaussian_nll(jnp.asarray(means[:, 0]), jnp.asarray(log_scales[:, 0]), jnp.asarray(y))
    want = -stats.norm.logpdf(y, means[:, 0], np.exp(log_scales[:, 0])).sum(1)
    np.testing.assert_allclose(a, want, rtol=1e-5)
    np.testing.assert_allclose(b, want, rtol=1e-5)


def test_mixture_moments_match_sampling():
    model = models.mdn((1,), components=3)
    rng = np.random.default_rng(2)
    outputs = jnp.asarray(rng.standard_normal((2, 9)), jnp.float32)
    mean, var = models.mixture_moments(outputs, 3)
    logits, mu, ls = (np.asarray(a) for a in models.split_mixture(outputs, 3))
    for i in range(2):
        pi = np.exp(logits[i]) / np.exp(logits[i]).sum()
        comp = rng.choice(3, 400_000, p=pi)
        s = mu[i, comp, 0] + np.exp(ls[i, comp, 0]) * rng.standard_normal(400_000)
        np.testing.assert_allclose(mean[i, 0], s.mean(), atol=0.02)
        np.testing.assert_allclose(var[i, 0], s.var(), rtol=0.02)
    assert model.input_shape == (1,)


def test_mixture_density_integrates_to_one():
    outputs = jnp.asarray(np.random.default_rng(3).standard_normal((2, 9)), jnp.float32)
    grid = jnp.linspace(-15, 15, 6001)
    p = models.mixture_density(outputs, 3, grid)
    np.testing.assert_allclose(jnp.sum(p, axis=1) * (grid[1] - grid[0]), [1, 1], rtol=1e-3)


def test_mdn_objective_gradient_matches_finite_differences():
    model = models.mdn((2,), components=2, out_dim=2, hidden=(3,))
    with x64():
        rng = np.random.default_rng(4)
        params = random_like(jax.eval_shape(model.init, jax.random.key(0))[0], rng, 0.5, dtype=jnp.float64)
        x = jnp.asarray(rng.standard_normal((4, 2)))
        y = jnp.asarray(rng.standard_normal((4, 2)))
        check_grad(lambda p: jnp.mean(model.metrics(p, {}, x, y)[0]["loss"]), params)
    with x64():  # the heteroscedastic regressor: an MDN of one component
        model = models.heteroscedastic((1,), hidden=(3,))
        params = random_like(jax.eval_shape(model.init, jax.random.key(0))[0], rng, 0.5, dtype=jnp.float64)
        x, y = jnp.asarray(rng.standard_normal((4, 1))), jnp.asarray(rng.standard_normal(4))
        check_grad(lambda p: jnp.mean(model.metrics(p, {}, x, y)[0]["loss"]), params)


def test_mdn_rejects_targets_of_the_wrong_shape():
    model = models.mdn((1,), out_dim=2)
    params, state = model.init(jax.random.key(0))
    with pytest.raises(ValueError, match=r"targets must have shape \(batch, 2\); got \(3, 1\)"):
        model.metrics(params, state, jnp.zeros((3, 1)), jnp.zeros((3, 1)))
    with pytest.raises(ValueError, match="do not pack 2 components"):
        models.split_mixture(jnp.zeros((1, 7)), 2)


def test_bishop_inverse_problem_is_seeded_and_multivalued():
    x, y = data.bishop_inverse(500, seed=1)
    x2, y2 = data.bishop_inverse(500, seed=1)
    np.testing.assert_array_equal(y, y2)
    assert x.shape == y.shape == (500, 1) and x.dtype == np.float32
    np.testing.assert_array_equal(x, x2)
    np.testing.assert_allclose(x - y - 0.3 * np.sin(2 * np.pi * y), 0, atol=0.1 + 1e-6)
    band = (x[:, 0] > 0.45) & (x[:, 0] < 0.55)  # three branches of y for x near 0.5
    assert y[band].min() < 0.2 and y[band].max() > 0.8 and ((y[band] > 0.35) & (y[band] < 0.65)).any()


@pytest.mark.slow
def test_mdn_fits_bishops_problem_where_least_squares_averages():
    """Trained by jaxnets.train.fit: the MDN's NLL beats the best homoscedastic Gaussian around a least-squares fit."""
    x, y = data.bishop_inverse(600, seed=0)
    model = jaxnets.models.build("mdn", (1,), components=3, hidden=(20,))
    mdn = jaxnets.train.fit(
        model, x, y, optimizer=optax.adam(1e-2), epochs=300, batch_size=100, progress=False, log=lambda s: None
    )
    nll = float(mdn.history[-1]["train_loss"])
    # a Gaussian around the conditional mean: at best the NLL of a Gaussian with the residual variance of the true
    # conditional mean (estimated by binning), which the multimodal inverse makes large
    bins = np.digitize(x[:, 0], np.linspace(x.min(), x.max(), 30))
    resid = np.concatenate([y[bins == b, 0] - y[bins == b, 0].mean() for b in np.unique(bins)])
    gauss = 0.5 * np.log(2 * np.pi * np.e * resid.var())
    assert nll < gauss - 0.3, (nll, gauss)  # measured: -0.59 against -0.22
