"""Adversarial variational Bayes: the objective's pieces against independent computations, the critic learning
log q(z|x) - log p(z) (so its mean is the KL) for a known q, and both players' losses falling."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from gradcheck import check_grad, x64

from jaxnets import losses, models
from jaxnets.train import avb_step


def _toy():
    return models.avb((4,), latent=2, hidden=(16,), critic_hidden=(32, 32))


def test_avb_terms_against_independent_computations():
    model = _toy()
    parts = models.avb_parts(model)
    params, state = jax.jit(model.init)(jax.random.PRNGKey(0))
    x = jnp.eye(4)
    key = jax.random.PRNGKey(1)

    @jax.jit
    def both(params):
        t = parts.terms(params, x, key)
        # by hand: the same eps and prior draws, the networks applied to the concatenations
        kq, kp = jax.random.split(key)
        z_q = parts.encoder.apply(params["encoder"], {}, jnp.concatenate([x, jax.random.normal(kq, (4, 2))], -1))[0]
        t_q = parts.critic.apply(params["critic"], {}, jnp.concatenate([x, z_q], -1))[0][:, 0]
        logits = parts.decoder.apply(params["decoder"], {}, z_q)[0]
        return t, {"z_q": z_q, "z_p": jax.random.normal(kp, (4, 2)), "t_q": t_q, "p": jax.nn.sigmoid(logits)}

    t, hand = both(params)
    for name in ("z_q", "z_p", "t_q"):
        np.testing.assert_allclose(t[name], hand[name], rtol=1e-5, atol=1e-6)
    p = np.asarray(hand["p"])
    np.testing.assert_allclose(t["reconstruction"], -np.sum(x * np.log(p) + (1 - x) * np.log(1 - p), -1), rtol=1e-5)
    metrics, _ = model.metrics(params, state, x, None, key=key)
    np.testing.assert_allclose(metrics["loss"], t["t_q"] + t["reconstruction"], rtol=1e-6)
    sig = jax.nn.sigmoid
    np.testing.assert_allclose(metrics["critic_loss"], -np.log(sig(t["t_q"])) - np.log(1 - sig(t["t_p"])), rtol=1e-5)


@pytest.mark.slow  # (600 critic steps)
def test_avb_critic_learns_the_kl_of_a_known_posterior():
    """Freeze the autoencoder and give the encoder a known q(z|x) = N(m, s^2 I) (z = m + s eps: its weights set by
    hand, x ignored): the critic's optimum is log q - log p, whose mean under q is KL(q || p) in closed form."""
    model = models.avb((4,), latent=2, hidden=(), critic_hidden=(64, 64))
    m, s = jnp.array([1.0, -0.5]), 0.5
    step = avb_step(model, optax.sgd(0.0), optax.adam(3e-3))
    state = step.init(jax.random.PRNGKey(0))
    encoder = {"out": {"w": jnp.concatenate([jnp.zeros((4, 2)), s * jnp.eye(2)]), "b": m}}
    state = state.replace(params={**state.params, "encoder": encoder})
    x = jnp.tile(jnp.eye(4), (64, 1))
    update = jax.jit(lambda st, k: step.update(st, (x, None), k))
    for i in range(600):
        state, _ = update(state, jax.random.PRNGKey(i))
    kl_closed = float(losses.gaussian_kl(m[None], jnp.log(jnp.full((1, 2), s * s)))[0])  # 0.5 sum(s^2 + m^2 - 1 - ..)
    estimates = [float(update(state, jax.random.PRNGKey(10_000 + i))[1]["kl"]) for i in range(20)]
    assert np.mean(estimates) == pytest.approx(kl_closed, abs=0.12), (np.mean(estimates), kl_closed)


def test_avb_players_losses_fall():
    model = _toy()
    step = avb_step(model, optax.adam(3e-3), optax.adam(3e-3))
    state = step.init(jax.random.PRNGKey(0))
    x = jnp.tile(jnp.eye(4), (16, 1))
    update = jax.jit(lambda st, k: step.update(st, (x, None), k))
    history = []
    for i in range(100):
        state, metrics = update(state, jax.random.PRNGKey(i))
        history.append({k: float(v) for k, v in metrics.items()})
    first, last = history[:10], history[-10:]
    mean = lambda rows, k: np.mean([r[k] for r in rows])  # noqa: E731
    assert mean(last, "reconstruction") < mean(first, "reconstruction") - 0.5
    assert mean(last, "loss") < mean(first, "loss")
    assert mean(last, "critic_loss") < 2 * np.log(2)  # the critic tells q from p better than chance


def test_avb_adaptive_contrast_on_a_gaussian_posterior():
    """Encoder z = m + A eps (x ignored: q = N(m, S), S = A A^T, correlation 0.8) and a critic fixed at T = 0: the
    KL estimate is the closed-form part alone, log r - log p, whose mean is KL(N(m, diag S) || p) for the paper's
    diagonal r; z~ has zero means and unit variances, its correlation left to the critic. Without adaptive contrast
    the estimate is T = 0 and the critic sees z."""
    m, a = np.array([1.0, -0.5]), np.array([[0.5, 0.0], [0.4, 0.3]])
    cov = a @ a.T
    corr = cov / np.sqrt(np.outer(np.diag(cov), np.diag(cov)))
    diagonal_kl = 0.5 * (np.trace(cov) + m @ m - 2 - np.sum(np.log(np.diag(cov))))  # KL(N(m, diag S) || N(0, I))
    x = jnp.tile(jnp.eye(4), (128, 1))
    for contrast in (True, False):
        model = models.avb(
            (4,), latent=2, hidden=(), critic_hidden=(8,), adaptive_contrast=contrast, contrast_samples=256
        )
        params, _ = model.init(jax.random.PRNGKey(0))
        critic = {**params["critic"], "out": jax.tree.map(jnp.zeros_like, params["critic"]["out"])}
        encoder = {"out": {"w": jnp.concatenate([jnp.zeros((4, 2)), jnp.asarray(a.T)]), "b": jnp.asarray(m)}}
        params = {**params, "encoder": encoder, "critic": critic}
        t = models.avb_parts(model).terms(params, x, jax.random.PRNGKey(1))
        if contrast:
            np.testing.assert_allclose(t["z_c"].mean(0), 0.0, atol=0.15)
            np.testing.assert_allclose(np.cov(np.asarray(t["z_c"]).T), corr, atol=0.15)
            assert float(t["kl"].mean()) == pytest.approx(diagonal_kl, abs=0.15), (float(t["kl"].mean()), diagonal_kl)
        else:
            np.testing.assert_array_equal(t["z_c"], t["z_q"])
            np.testing.assert_array_equal(t["kl"], 0.0)
    with pytest.raises(ValueError, match="contrast_samples must be >= 2"):
        models.avb((4,), adaptive_contrast=True, contrast_samples=1)


def test_avb_parts_refuses_another_model():
    with pytest.raises(ValueError, match="is not an adversarial-variational-Bayes model"):
        models.avb_parts(models.build("mlp", input_shape=(4,), num_classes=2))


def test_avb_gradients_match_finite_differences():
    """The negative ELBO estimate and the critic's loss with respect to all three networks, in float64."""
    model = models.avb((3,), latent=2, hidden=(4,), critic_hidden=(4,))
    rng = np.random.default_rng(0)
    with x64():
        params, state = model.init(jax.random.PRNGKey(0))
        params = jax.tree.map(lambda a: jnp.asarray(rng.standard_normal(a.shape)), params)
        x = jnp.asarray((rng.uniform(size=(4, 3)) > 0.5).astype(np.float64))

        def loss(p):
            metrics, _ = model.metrics(p, state, x, None, key=jax.random.PRNGKey(1))
            return jnp.mean(metrics["loss"]) + jnp.mean(metrics["critic_loss"])

        assert check_grad(loss, params) > 0


def test_avb_log_likelihood_is_exact_when_the_decoder_ignores_z():
    """Encoder z = eps (x ignored: the fitted proposal is ~N(0, I), the prior) and a decoder that ignores z: every
    importance weight is ~p(x), known in closed form; a proposal N(2, I) far from the posterior gives, with one
    sample, log p(x) - KL = log p(x) - 4 on average (a lower bound)."""
    model = models.avb((4,), latent=2, hidden=(), critic_hidden=(8,))
    params, _ = model.init(jax.random.PRNGKey(0))
    bias = jnp.array([-1.0, 0.5, 2.0, 0.0])
    encoder = {"w": jnp.concatenate([jnp.zeros((4, 2)), jnp.eye(2)]), "b": jnp.zeros(2)}
    params = {**params, "encoder": {"out": encoder}, "decoder": {"out": {"w": jnp.zeros((2, 4)), "b": bias}}}
    x = jnp.tile(jnp.eye(4), (64, 1))
    exact = -losses.bernoulli_nll(jnp.tile(bias, (256, 1)), x)
    lk = models.avb_log_likelihood(model, params, x, jax.random.PRNGKey(1), 1, 1, 4096)
    np.testing.assert_allclose(lk, exact, atol=0.25)  # (the fitted proposal is N(0, I) up to sampling error)
    assert float(jnp.mean(lk - exact)) == pytest.approx(0.0, abs=0.02)
    shifted = {**params, "encoder": {"out": {**encoder, "b": jnp.full(2, 2.0)}}}
    l1 = models.avb_log_likelihood(model, shifted, x, jax.random.PRNGKey(1), 1, 1, 4096)
    assert float(jnp.mean(l1 - exact)) == pytest.approx(-4.0, abs=0.6)  # (sd 2.8 per example)
