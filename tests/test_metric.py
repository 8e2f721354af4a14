"""Metric and few-shot learning: contrastive and triplet losses, Siamese/triplet/prototypical nets, the samplers."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from gradcheck import check_grad, x64
from helpers import random_like

from jaxnets import data, losses, models, nn


def test_contrastive_loss_is_zero_once_margins_are_met():
    d = jnp.asarray([0.0, 1.0, 1.5, 0.3, 0.0])
    same = jnp.asarray([1, 0, 0, 1, 0])
    np.testing.assert_allclose(losses.contrastive_loss(d, same, margin=1.0), [0, 0, 0, 0.045, 0.5], atol=1e-7)


def test_triplet_losses_are_zero_once_margins_are_met():
    a, p, n = jnp.zeros((2, 2)), jnp.asarray([[0.1, 0], [0.5, 0]]), jnp.asarray([[1.0, 0], [0.6, 0]])
    # d_ap = .01, .25; d_an = 1, .36: the first triplet meets margin 0.2, the second misses it by 0.09
    np.testing.assert_allclose(losses.triplet_loss(a, p, n, 0.2), [0, 0.09], atol=1e-6)
    e = jnp.asarray([[0.0, 0], [0.1, 0], [3.0, 0], [3.1, 0]])
    np.testing.assert_allclose(losses.batch_hard_triplet_loss(e, jnp.asarray([0, 0, 1, 1]), 0.2), 0, atol=1e-7)


def test_batch_hard_mining_picks_the_hardest_triplet():
    rng = np.random.default_rng(0)
    e, y = rng.standard_normal((8, 3)), rng.integers(0, 3, 8)
    y[7] = 9  # an anchor with no positive: loss 0
    got = losses.batch_hard_triplet_loss(jnp.asarray(e), jnp.asarray(y), 0.5)
    got_euclid = losses.batch_hard_triplet_loss(jnp.asarray(e), jnp.asarray(y), 0.5, squared=False)
    for i in range(8):  # brute force over every valid triplet: the hardest one's loss
        pos = [j for j in range(8) if y[j] == y[i] and j != i]
        neg = [k for k in range(8) if y[k] != y[i]]
        want = max(
            (max(0, np.sum((e[i] - e[j]) ** 2) - np.sum((e[i] - e[k]) ** 2) + 0.5) for j in pos for k in neg),
            default=0.0,
        )
        np.testing.assert_allclose(got[i], want, rtol=1e-5, atol=1e-6)
        euclid = max(
            (max(0, np.linalg.norm(e[i] - e[j]) - np.linalg.norm(e[i] - e[k]) + 0.5) for j in pos for k in neg),
            default=0.0,
        )
        np.testing.assert_allclose(got_euclid[i], euclid, rtol=1e-5, atol=1e-6)
    default = losses.batch_hard_triplet_loss(jnp.asarray(e), jnp.asarray(y))  # FaceNet's margin 0.2 by default
    np.testing.assert_array_equal(default, losses.batch_hard_triplet_loss(jnp.asarray(e), jnp.asarray(y), 0.2))
    assert not np.allclose(default, losses.batch_hard_triplet_loss(jnp.asarray(e), jnp.asarray(y), 0.4))


def test_metric_loss_gradients_match_finite_differences():
    rng = np.random.default_rng(1)
    with x64():
        e, y = jnp.asarray(rng.standard_normal((6, 3))), jnp.asarray([0, 0, 1, 1, 2, 2])
        check_grad(lambda e: jnp.sum(losses.batch_hard_triplet_loss(e, y, 2.0)), e, require_nonzero=False)
        check_grad(lambda e: jnp.sum(losses.batch_hard_triplet_loss(e, y, 2.0, squared=False)), e)
        a, b = jnp.asarray(rng.standard_normal((4, 3))), jnp.asarray(rng.standard_normal((4, 3)))
        same = jnp.asarray([1, 0, 1, 0])
        check_grad(lambda ab: jnp.sum(losses.contrastive_loss(losses.euclidean_distance(*ab), same, 5.0)), (a, b))
        check_grad(lambda t: jnp.sum(losses.triplet_loss(*t, 5.0)), (a, b, jnp.asarray(rng.standard_normal((4, 3)))))


def _small_embedding():
    return nn.serial(
        nn.flatten(), nn.dense(5, name="d1"), nn.activation("tanh"), nn.dense(3, name="d2"), name="embedding"
    )


def test_siamese_and_triplet_models_gradients():
    rng = np.random.default_rng(2)
    siamese = models.siamese((2, 2, 1), embedding=_small_embedding(), margin=3.0)
    triplet = models.triplet((2, 2, 1), embedding=_small_embedding(), margin=3.0)
    with x64():
        params = random_like(jax.eval_shape(siamese.init, jax.random.key(0))[0], rng, 0.5, dtype=jnp.float64)
        x, same = jnp.asarray(rng.standard_normal((4, 2, 2, 2, 1))), jnp.asarray([1, 0, 1, 0])
        # (the last bias shifts both towers alike, so the distance and its gradient do not depend on it)
        check_grad(lambda p: jnp.mean(siamese.metrics(p, {}, x, same)[0]["loss"]), params, require_nonzero=False)
        x1 = jnp.asarray(rng.standard_normal((6, 2, 2, 1)))
        check_grad(lambda p: jnp.mean(triplet.metrics(p, {}, x1, jnp.asarray([0, 0, 1, 1, 2, 2]))[0]["loss"]), params)
    m, _ = siamese.metrics(params, {}, x.astype(jnp.float32), same)
    assert set(m) == {"loss", "accuracy", "distance"} and m["loss"].shape == (4,)


def test_siamese_predicts_same_below_half_the_margin():
    siamese = models.siamese((1,), embedding=nn.serial(nn.flatten(), name="embedding"), margin=1.0)
    x = jnp.asarray([[[0.0], [0.4]], [[0.0], [0.6]], [[0.0], [0.6]]])
    m, _ = siamese.metrics({}, {}, x, jnp.asarray([1, 1, 0]))
    np.testing.assert_allclose(m["distance"], [0.4, 0.6, 0.6], rtol=1e-6)
    np.testing.assert_array_equal(m["accuracy"], [1, 0, 1])


def test_prototypical_net_is_a_linear_classifier_snell_eq8():
    """-|f(x) - c_k|^2 = 2 c_k . f(x) - |c_k|^2 - |f(x)|^2: the softmax equals that of the linear classifier with
    w_k = 2 c_k, b_k = -|c_k|^2 (Snell et al. 2017, eq. 8)."""
    rng = np.random.default_rng(3)
    n_way, k_shot, n_query, dim = 4, 3, 2, 6
    emb = jnp.asarray(rng.standard_normal((2, n_way * (k_shot + n_query), dim)), jnp.float32)
    logits, labels = models.prototype_logits(emb, n_way, k_shot)
    assert logits.shape == (2, n_way * n_query, n_way)
    np.testing.assert_array_equal(labels, np.repeat(np.arange(n_way), n_query))
    e = np.asarray(emb).reshape(2, n_way, k_shot + n_query, dim)
    c = e[:, :, :k_shot].mean(2)
    q = e[:, :, k_shot:].reshape(2, -1, dim)
    linear = np.einsum("bqd,bkd->bqk", q, 2 * c) - np.sum(c**2, -1)[:, None, :]
    np.testing.assert_allclose(jax.nn.softmax(logits), jax.nn.softmax(linear), rtol=1e-4, atol=1e-6)


def test_protonet_model_runs_episodes_and_shares_siamese_weights():
    embedding = _small_embedding()
    net = models.protonet((2, 2, 1), n_way=3, k_shot=2, n_query=2, embedding=embedding)
    one_shot = models.protonet((2, 2, 1), n_way=3, k_shot=1, n_query=2, embedding=embedding)
    siamese = models.siamese((2, 2, 1), embedding=embedding)
    assert net.input_shape == (12, 2, 2, 1)
    params, state = siamese.init(jax.random.key(0))
    x = jnp.asarray(np.random.default_rng(4).integers(0, 256, (5, 12, 2, 2, 1)), jnp.uint8)
    m, _ = net.metrics(params, state, x, jnp.zeros(5, jnp.int32))
    assert m["loss"].shape == m["accuracy"].shape == (5,)
    m1, _ = one_shot.metrics(params, state, x[:, :9], jnp.zeros(5, jnp.int32))
    assert np.all((np.asarray(m1["accuracy"]) * 6) % 1 == 0)  # a fraction of the 6 queries
    with pytest.raises(ValueError, match="n_way >= 2"):
        models.protonet(n_way=1)


def test_episode_sampler_is_seeded_class_major_and_disjoint():
    y = np.repeat(np.arange(10), 30)
    idx, classes = data.episode_indices(y, range(5, 10), n_way=5, k_shot=1, n_query=3, episodes=20, seed=0)
    idx2, _ = data.episode_indices(y, range(5, 10), n_way=5, k_shot=1, n_query=3, episodes=20, seed=0)
    np.testing.assert_array_equal(idx, idx2)
    assert idx.shape == (20, 20) and classes.shape == (20, 5)
    labels = y[idx].reshape(20, 5, 4)
    assert (labels == labels[:, :, :1]).all() and (labels[:, :, 0] == classes).all()
    assert labels.min() >= 5 and all(len(set(row)) == 5 for row in classes)
    assert all(len(set(row)) == 20 for row in idx)  # no example twice in an episode
    with pytest.raises(ValueError, match="fewer than k_shot"):
        data.episode_indices(y, range(5), 2, 20, 20, 1)


def test_pairs_are_balanced_and_labelled():
    y = np.random.default_rng(5).integers(0, 4, 200)
    idx, same = data.pair_indices(y, seed=1)
    assert same.mean() == 0.5 and idx.shape == (len(same), 2)
    np.testing.assert_array_equal(y[idx[:, 0]] == y[idx[:, 1]], same.astype(bool))


def test_recall_at_1_against_brute_force():
    rng = np.random.default_rng(6)
    e, y = rng.standard_normal((37, 3)), rng.integers(0, 3, 37)
    d = ((e[:, None] - e[None]) ** 2).sum(-1) + np.diag(np.full(37, np.inf))
    want = np.mean(y[d.argmin(1)] == y)
    assert models.recall_at_1(jnp.asarray(e, jnp.float32), y, batch=10) == pytest.approx(want)
