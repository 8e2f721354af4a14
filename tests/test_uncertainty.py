"""Uncertainty: the variance and entropy splits, ECE by hand, temperature scaling, AUROC, MC dropout, ensembles."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

from jaxnets import data, models, uncertainty


def test_variance_split_is_the_law_of_total_variance():
    """Var of a sample from the equal mixture of N(mu_s, var_s) == E[var_s] + Var[mu_s], checked by sampling."""
    rng = np.random.default_rng(0)
    means, variances = rng.standard_normal((5, 3)), rng.uniform(0.1, 1.0, (5, 3))
    aleatoric, epistemic, total = uncertainty.variance_split(jnp.asarray(means), jnp.asarray(variances))
    np.testing.assert_allclose(aleatoric, variances.mean(0), rtol=1e-6)
    np.testing.assert_allclose(epistemic, means.var(0), rtol=1e-5)
    member = rng.integers(0, 5, (400_000, 3))
    draws = means[member, np.arange(3)] + np.sqrt(variances[member, np.arange(3)]) * rng.standard_normal(member.shape)
    np.testing.assert_allclose(total, draws.var(0), rtol=0.01)


def test_entropy_split():
    p = jnp.asarray([[[1.0, 0.0]], [[0.0, 1.0]]])  # two confident members that disagree: all epistemic
    aleatoric, epistemic, total = uncertainty.entropy_split(p)
    np.testing.assert_allclose([aleatoric[0], epistemic[0], total[0]], [0, np.log(2), np.log(2)], atol=1e-6)
    q = jnp.full((3, 1, 4), 0.25)  # members agreeing on a uniform prediction: all aleatoric
    np.testing.assert_allclose(uncertainty.entropy_split(q)[0], [np.log(4)], rtol=1e-6)
    np.testing.assert_allclose(uncertainty.entropy_split(q)[1], [0], atol=1e-6)
    r = np.random.default_rng(1).dirichlet(np.ones(5), (4, 6))
    np.testing.assert_allclose(uncertainty.entropy(jnp.asarray(r)), stats.entropy(r, axis=-1), rtol=1e-5)


def test_ece_by_hand():
    # bins of width 0.5: confidences 0.6, 0.7 (bin 2; 1 of 2 right), 0.4 (bin 1... with 3 classes), 0.9 (bin 2, right)
    probs = np.array([[0.6, 0.4, 0.0], [0.3, 0.7, 0.0], [0.4, 0.3, 0.3], [0.05, 0.05, 0.9]])
    labels = np.array([0, 0, 0, 2])
    # bin (0, .5]: conf 0.4, correct 1 -> gap 0.6, weight 1/4; bin (.5, 1]: conf mean .7333, acc 2/3 -> gap 1/15
    want = 0.25 * 0.6 + 0.75 * abs(2 / 3 - (0.6 + 0.7 + 0.9) / 3)
    assert uncertainty.expected_calibration_error(probs, labels, bins=2) == pytest.approx(want)
    r = uncertainty.reliability(probs, labels, bins=2)
    np.testing.assert_array_equal(r["count"], [1, 3])
    np.testing.assert_allclose(r["accuracy"], [1, 2 / 3])
    empty = uncertainty.reliability(probs, labels, bins=10)
    assert np.isnan(empty["accuracy"][0]) and empty["count"].sum() == 4


def test_perfectly_calibrated_predictions_have_small_ece():
    rng = np.random.default_rng(2)
    conf = rng.uniform(0.5, 1.0, 200_000)
    labels = (rng.uniform(size=conf.size) > conf).astype(int)  # class 0 right with probability conf
    probs = np.stack([conf, 1 - conf], 1)
    assert uncertainty.expected_calibration_error(probs, labels) < 0.01


def test_temperature_above_one_for_sharpened_logits_and_recovers_it():
    rng = np.random.default_rng(3)
    logits = rng.standard_normal((20_000, 5)) * 2
    labels = np.array([rng.choice(5, p=np.exp(z) / np.exp(z).sum()) for z in logits])  # calibrated at T = 1
    assert uncertainty.fit_temperature(logits, labels) == pytest.approx(1.0, abs=0.05)
    t = uncertainty.fit_temperature(3.0 * logits, labels)  # over-confident
    assert t == pytest.approx(3.0, rel=0.05)
    assert uncertainty.fit_temperature(0.5 * logits, labels) == pytest.approx(0.5, rel=0.05)
    before = uncertainty.expected_calibration_error(jax.nn.softmax(3.0 * logits), labels)
    after = uncertainty.expected_calibration_error(jax.nn.softmax(3.0 * logits / t), labels)
    assert after < before / 3


def test_temperature_minimises_the_nll():
    rng = np.random.default_rng(4)
    logits = rng.standard_normal((300, 4)) * 3
    labels = np.where(rng.uniform(size=300) < 0.6, logits.argmax(1), rng.integers(0, 4, 300))

    def nll(t):
        return float(np.mean(-jax.nn.log_softmax(logits / t)[np.arange(300), labels]))

    t = uncertainty.fit_temperature(logits, labels)
    assert 1 < t < 10 and nll(t) <= min(nll(t * 0.98), nll(t * 1.02))


def test_auroc_against_counting_pairs():
    rng = np.random.default_rng(5)
    pos, neg = rng.normal(1, 1, 60).round(1), rng.normal(0, 1, 70).round(1)  # rounding makes ties
    want = np.mean((pos[:, None] > neg[None]) + 0.5 * (pos[:, None] == neg[None]))
    assert uncertainty.auroc(pos, neg) == pytest.approx(want)
    assert uncertainty.auroc([2, 3], [0, 1]) == 1.0 and uncertainty.auroc([0], [0]) == 0.5


def test_mc_dropout_samples_differ_and_average_to_the_deterministic_net():
    model = models.mdn((1,), components=1, hidden=(16,), activation="relu", dropout=0.5)
    params, state = model.init(jax.random.key(0))
    x = jnp.linspace(-1, 1, 4)[:, None]
    out = uncertainty.sample_outputs(model, params, state, x, jax.random.key(1), samples=1000)
    assert out.shape == (1000, 4, 3)
    assert float(jnp.std(out[:, 0, 1])) > 0
    # inverted dropout is unbiased layer by layer: with one hidden layer, E[outputs] is the deterministic output
    np.testing.assert_allclose(out.mean(0), model.apply(params, state, x)[0], atol=0.05)
    with pytest.raises(ValueError, match="non-trained state"):
        uncertainty.sample_outputs(model, params, {"bn": jnp.zeros(1)}, x, jax.random.key(1))


def test_ensemble_outputs_stack_members():
    model = models.heteroscedastic((1,), hidden=(4,))
    members = [model.init(jax.random.key(s)) for s in range(3)]
    x = jnp.ones((2, 1))
    out = uncertainty.ensemble_outputs(model, members, x)
    assert out.shape == (3, 2, 3)
    np.testing.assert_allclose(out[1], model.apply(*members[1], x)[0])


def test_gap_sine_leaves_the_gap_empty():
    x, y = data.gap_sine(300, gap=(-1, 1), seed=0)
    assert x.shape == y.shape == (300, 1)
    assert not ((x > -1) & (x < 1)).any() and x.min() >= -4 and x.max() <= 4
    with pytest.raises(ValueError, match="gap"):
        data.gap_sine(gap=(3, 5))
