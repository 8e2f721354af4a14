"""Training steps for latent-variable models: dynamic binarisation of the data (a fresh Bernoulli sample of every
image at every step, as in Burda et al. 2016), and adversarial variational Bayes's two players."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import optax

from jaxnets.models import Model, avb_parts
from jaxnets.models import avb_critic_loss as critic_loss
from jaxnets.train.state import TrainState
from jaxnets.train.step import TrainStep


def dynamically_binarised(step: TrainStep) -> TrainStep:
    """``step`` trained on binary images: each batch ``x`` of grey levels in [0, 1] is replaced by a Bernoulli sample
    ``x_b ~ Bernoulli(x)`` drawn from the step's key (a new binarisation every time an image is seen), the rest of
    the key going to ``step.update``. Evaluation is unchanged (binarise the test set once, with a fixed seed)."""

    def update(state, batch, key):
        x, y = batch
        kb, key = jax.random.split(key)
        return step.update(state, (jax.random.bernoulli(kb, x).astype(x.dtype), y), key)

    return step._replace(update=update, name=f"{step.name}_binarised")


def avb_step(
    model: Model, autoencoder_optimizer: optax.GradientTransformation, critic_optimizer: optax.GradientTransformation
) -> TrainStep:
    """Mescheder et al.'s (2017, algorithm 1) step for an ``avb`` model on a batch ``(x, _)``, both players'
    gradients taken at the current parameters: the encoder and decoder (``autoencoder_optimizer``, on
    ``{'encoder', 'decoder'}``) descend ``mean(T(x, z_q) - log p(x | z_q))``, z_q = E(x, eps); the critic
    (``critic_optimizer``) descends its logistic loss on (x, z_q) against (x, z ~ p(z)). With adaptive contrast
    (``avb(..., adaptive_contrast=True)``) the critic sees the normalised z~ instead of z_q and the autoencoder's KL
    term is ``T(x, z~) + log r(z_q|x) - log p(z_q)`` (the paper's section 3.3). Metrics: 'loss' (the negative ELBO
    estimate), 'reconstruction', 'kl' (the mean KL estimate) and 'critic_loss'."""
    parts = avb_parts(model)

    def init(key: jax.Array) -> TrainState:
        init_key, run_key = jax.random.split(key)
        params, model_state = model.init(init_key)
        auto = {"encoder": params["encoder"], "decoder": params["decoder"]}
        return TrainState.create(
            params,
            {"autoencoder": autoencoder_optimizer.init(auto), "critic": critic_optimizer.init(params["critic"])},
            run_key,
            model_state,
        )

    def update(state: TrainState, batch, key: jax.Array) -> tuple[TrainState, dict[str, jax.Array]]:
        x, _ = batch
        params = state.params

        def autoencoder_objective(auto):
            t = parts.terms({**auto, "critic": params["critic"]}, x, key)
            return jnp.mean(t["kl"] + t["reconstruction"]), t

        def critic_objective(critic):
            t = parts.terms({**jax.lax.stop_gradient(params), "critic": critic}, x, key)
            return jnp.mean(critic_loss(t["t_q"], t["t_p"]))

        auto = {"encoder": params["encoder"], "decoder": params["decoder"]}
        (loss, t), g_auto = jax.value_and_grad(autoencoder_objective, has_aux=True)(auto)
        c_loss, g_critic = jax.value_and_grad(critic_objective)(params["critic"])
        updates, o_auto = autoencoder_optimizer.update(g_auto, state.opt_state["autoencoder"], auto)
        auto = optax.apply_updates(auto, updates)
        updates, o_critic = critic_optimizer.update(g_critic, state.opt_state["critic"], params["critic"])
        new = {**auto, "critic": optax.apply_updates(params["critic"], updates)}
        return (
            state.replace(params=new, opt_state={"autoencoder": o_auto, "critic": o_critic}),
            {
                "loss": loss,
                "reconstruction": jnp.mean(t["reconstruction"]),
                "kl": jnp.mean(t["kl"]),
                "critic_loss": c_loss,
            },
        )

    def evaluate(state: TrainState, x, y) -> dict[str, jax.Array]:
        return model.metrics(state.params, state.model_state, x, y, train=False)[0]

    return TrainStep(init, update, evaluate, model.name)
