"""The faithful VAE score: the importance-weighted bound (Burda et al. 2016) on cases with a known log p(x), its
rise with k above the ELBO, and dynamic binarisation of the training data."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxnets import losses, models, train
from jaxnets.train import dynamically_binarised


def _linear_gaussian_log_weights(x, proposal_mean, proposal_log_var, k, key, s2=0.5):
    """z ~ N(0, 1), x | z ~ N(z, s2): log p(x, z) - log q(z) for k draws of z from the proposal q."""
    z = proposal_mean + jnp.exp(0.5 * proposal_log_var) * jax.random.normal(key, (k, *x.shape))
    log_joint = losses.gaussian_log_density(z[..., None]) + losses.gaussian_log_density(
        x[None, :, None], z[..., None], jnp.log(s2)
    )
    return log_joint - losses.gaussian_log_density(z[..., None], proposal_mean[..., None], proposal_log_var[..., None])


def test_importance_weighted_bound_on_a_linear_gaussian_model():
    """log p(x) = log N(x | 0, 1 + s2) is known. With the exact posterior as proposal every weight equals p(x), so
    every L_k is exact; with the prior as proposal L_k rises with k toward it, L_1 (the ELBO) the lowest."""
    s2 = 0.5
    x = jnp.linspace(-2.5, 2.5, 64)
    log_px = losses.gaussian_log_density(x[:, None], 0.0, jnp.log(1 + s2))
    post_mean, post_log_var = x / (1 + s2), jnp.full_like(x, jnp.log(s2 / (1 + s2)))
    exact = losses.importance_weighted_bound(
        _linear_gaussian_log_weights(x, post_mean, post_log_var, 3, jax.random.PRNGKey(0), s2)
    )
    np.testing.assert_allclose(exact, log_px, rtol=1e-5, atol=1e-5)

    prior = jnp.zeros_like(x), jnp.zeros_like(x)
    bounds = []
    for k in (1, 10, 100, 5000):  # averaged over 20 independent estimates: the expectation L_k
        estimate = jax.jit(
            jax.vmap(
                lambda key, k=k: losses.importance_weighted_bound(_linear_gaussian_log_weights(x, *prior, k, key, s2))
            )
        )
        bounds.append(float(estimate(jax.random.split(jax.random.PRNGKey(k), 20)).mean()))
    assert bounds[0] < bounds[1] < bounds[2] < float(log_px.mean()) + 1e-3, bounds
    assert abs(bounds[3] - float(log_px.mean())) < 0.01, (bounds, float(log_px.mean()))


def _small_vae():
    return models.vae(input_shape=(4, 4, 1), hidden=(8,), latent=2)


def test_vae_bound_is_exact_when_the_decoder_ignores_z_and_q_is_the_prior():
    """Decoder weights 0 (pixel logits = its bias b, whatever z) and encoder heads 0 (q(z|x) = N(0, I) = p(z)):
    every importance weight is p(x) = prod Bernoulli(x | sigmoid(b)), so L_k = log p(x) for any k."""
    model = _small_vae()
    params, state = model.init(jax.random.PRNGKey(0))
    params = jax.tree_util.tree_map_with_path(
        lambda path, a: jnp.zeros_like(a) if "heads" in jax.tree_util.keystr(path) else a, params
    )
    b = jnp.linspace(-2, 2, 16).reshape(4, 4, 1)
    params["decoder"]["out"] = {"w": jnp.zeros_like(params["decoder"]["out"]["w"]), "b": b.reshape(-1)}
    x = (np.random.default_rng(0).uniform(size=(5, 4, 4, 1)) > 0.5).astype(np.float32)
    log_px = -losses.bernoulli_nll(jnp.broadcast_to(b, x.shape), jnp.asarray(x))
    for k, chunk in ((1, 1), (40, 10)):
        np.testing.assert_allclose(
            models.vae_log_likelihood(model, params, state, x, jax.random.PRNGKey(1), k, chunk), log_px, rtol=1e-5
        )


def test_vae_bound_rises_with_k_above_the_elbo():
    model = _small_vae()
    params, state = model.init(jax.random.PRNGKey(3))
    x = jnp.asarray((np.random.default_rng(1).uniform(size=(32, 4, 4, 1)) > 0.5).astype(np.float32))
    weights = models.vae_log_weights(model, params, state, x, jax.random.PRNGKey(4), 1000)  # (1000, 32)

    def bound(k):  # the mean of 1000 / k independent L_k estimates
        return float(
            jnp.mean(losses.importance_weighted_bound(weights.reshape(k, -1, 32).swapaxes(0, 1).reshape(k, -1)))
        )

    elbo = float(jnp.mean(weights))
    assert bound(1) == elbo or abs(bound(1) - elbo) < 1e-5
    assert elbo < bound(10) < bound(100) < bound(1000), (elbo, bound(10), bound(100), bound(1000))
    # the model's own -loss is a one-sample ELBO estimate: close to the 1000-sample one
    metrics, _ = model.metrics(params, state, x, None)
    assert abs(float(-metrics["loss"].mean()) - elbo) < 0.5
    lk = models.vae_log_likelihood(model, params, state, x, jax.random.PRNGKey(5), 200, 50)
    assert float(lk.mean()) > elbo


def test_dynamic_binarisation_gives_each_step_a_fresh_bernoulli_sample():
    seen = []

    def update(state, batch, key):
        x, _ = batch
        seen.append(x)
        return state, {"loss": jnp.mean(x)}

    base = train.supervised(_small_vae(), optax.sgd(0.0))
    step = dynamically_binarised(base._replace(update=update))
    x = jnp.full((2000, 4, 4, 1), 0.3)
    step.update(None, (x, None), jax.random.PRNGKey(0))
    step.update(None, (x, None), jax.random.PRNGKey(1))
    a, b = np.asarray(seen[0]), np.asarray(seen[1])
    assert set(np.unique(a)) == {0.0, 1.0} and abs(a.mean() - 0.3) < 0.01
    assert not np.array_equal(a, b)
    assert step.name.endswith("_binarised")
