"""Training steps of several players for ``fit``: the GAN's alternating discriminator and generator updates, each
player with its own optax optimiser; DANN's gradient-reversal objective over a source and a target domain."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import optax

from jaxnets.losses import binary_cross_entropy_with_logits, discriminator_loss, generator_loss, softmax_cross_entropy
from jaxnets.models import Model, adversarial_parts, dann_lambda, domain_parts
from jaxnets.train.state import TrainState
from jaxnets.train.step import TrainStep

Metrics = dict[str, jax.Array]


def _players_state(params, model_state, optimizers: dict[str, optax.GradientTransformation], key) -> TrainState:
    opt_state = {name: opt.init(params[name]) for name, opt in optimizers.items()}
    return TrainState.create(params, opt_state, key, model_state)


def _apply(optimizer: optax.GradientTransformation, grads, opt_state, params):
    updates, opt_state = optimizer.update(grads, opt_state, params)
    return optax.apply_updates(params, updates), opt_state


def gan_step(
    model: Model,
    generator_optimizer: optax.GradientTransformation,
    discriminator_optimizer: optax.GradientTransformation,
) -> TrainStep:
    """Goodfellow et al.'s (2014, algorithm 1, k = 1) step for a ``gan``/``dcgan`` model, on a batch ``(x, _)`` of
    real images in [-1, 1]: draw z ~ N(0, I) (one per real image); one ``discriminator_optimizer`` step on the
    discriminator loss of the real batch against G(z); then one ``generator_optimizer`` step on the generator loss
    (non-saturating unless the model says otherwise) of G(z) against the updated discriminator. Batch-norm
    statistics: the discriminator's from its own step, the generator's from the generator step. Metrics:
    'discriminator_loss', 'generator_loss', 'd_real' and 'd_fake' (D's mean probability of "real")."""
    parts = adversarial_parts(model)
    optimizers = {"generator": generator_optimizer, "discriminator": discriminator_optimizer}

    def init(key: jax.Array) -> TrainState:
        init_key, run_key = jax.random.split(key)
        params, model_state = model.init(init_key)
        return _players_state(params, model_state, optimizers, run_key)

    def update(state: TrainState, batch, key: jax.Array) -> tuple[TrainState, Metrics]:
        x, _ = batch
        kz, kg, kd_real, kd_fake, kd_gen = jax.random.split(key, 5)
        z = jax.random.normal(kz, (x.shape[0], parts.latent))
        params, mstate = state.params, state.model_state
        fake, _ = parts.generate(params, mstate, z, key=kg, train=True)
        fake = jax.lax.stop_gradient(fake)

        def d_objective(pd):
            p = {**params, "discriminator": pd}
            real_logits, sd = parts.discriminate(p, mstate, x, key=kd_real, train=True)
            fake_logits, sd = parts.discriminate(p, {**mstate, "discriminator": sd}, fake, key=kd_fake, train=True)
            return discriminator_loss(real_logits, fake_logits).mean(), (sd, real_logits, fake_logits)

        (d_loss, (sd, real_logits, fake_logits)), d_grads = jax.value_and_grad(d_objective, has_aux=True)(
            params["discriminator"]
        )
        pd, od = _apply(discriminator_optimizer, d_grads, state.opt_state["discriminator"], params["discriminator"])
        mstate = {**mstate, "discriminator": sd}

        def g_objective(pg):
            p = {"generator": pg, "discriminator": pd}
            images, sg = parts.generate(p, mstate, z, key=kg, train=True)
            logits, _ = parts.discriminate(p, mstate, images, key=kd_gen, train=True)
            return generator_loss(logits, parts.saturating).mean(), sg

        (g_loss, sg), g_grads = jax.value_and_grad(g_objective, has_aux=True)(params["generator"])
        pg, og = _apply(generator_optimizer, g_grads, state.opt_state["generator"], params["generator"])
        new = state.replace(
            params={"generator": pg, "discriminator": pd},
            model_state={**mstate, "generator": sg},
            opt_state={"generator": og, "discriminator": od},
        )
        return new, {
            "discriminator_loss": d_loss,
            "generator_loss": g_loss,
            "d_real": jax.nn.sigmoid(real_logits).mean(),
            "d_fake": jax.nn.sigmoid(fake_logits).mean(),
        }

    def evaluate(state: TrainState, x, y) -> Metrics:
        key = jax.random.fold_in(state.key, 2)  # the same z for every test batch of a run: a fixed reference
        return model.metrics(state.params, state.model_state, x, y, key=key, train=False)[0]

    return TrainStep(init, update, evaluate, model.name)


def dann_step(
    model: Model, optimizer: optax.GradientTransformation, total_steps: int, adapt: bool = True, gamma: float = 10.0
) -> TrainStep:
    """Ganin et al.'s (2016, algorithm 1) step for a ``dann`` model on a batch ``({'source': xs, 'target': xt}, ys)``
    (as many target as source examples, the target unlabelled): one ``optimizer`` step on

        mean CE(G_y(G_f(xs)), ys) + mean over both domains of BCE(G_d(R(G_f(x))), domain)

    where R is the gradient reversal of scale lambda_p = ``dann_lambda(step / total_steps, gamma)``. With
    ``adapt=False`` the scale is 0: the domain classifier still learns, but its gradient never reaches the features
    (the source-only baseline, same network and steps). Metrics: 'loss', 'label_loss', 'domain_loss',
    'source_accuracy', 'domain_accuracy' (of G_d on both domains; chance is 0.5) and 'lambda'."""
    parts = domain_parts(model)
    if total_steps < 1:
        raise ValueError(
            f"total_steps (the run's number of steps, for the lambda schedule) must be >= 1; got {total_steps}"
        )

    def init(key: jax.Array) -> TrainState:
        init_key, run_key = jax.random.split(key)
        params, model_state = model.init(init_key)
        return TrainState.create(params, optimizer.init(params), run_key, model_state)

    def update(state: TrainState, batch, key: jax.Array) -> tuple[TrainState, Metrics]:
        x, ys = batch
        xs, xt = x["source"], x["target"]
        scale = dann_lambda(state.step / total_steps, gamma) if adapt else jnp.float32(0.0)
        keys = jax.random.split(key, 4)
        domains = jnp.concatenate([jnp.zeros(len(xs)), jnp.ones(len(xt))])

        def objective(params):
            f, mstate = parts.embed(params, state.model_state, jnp.concatenate([xs, xt]), key=keys[0], train=True)
            logits, mstate = parts.classify(params, mstate, f[: len(xs)], key=keys[1], train=True)
            d_logits, mstate = parts.discriminate(params, mstate, f, scale, key=keys[2], train=True)
            label_loss = softmax_cross_entropy(logits, ys).mean()
            domain_loss = binary_cross_entropy_with_logits(d_logits[:, None], domains[:, None]).mean()
            metrics = {
                "label_loss": label_loss,
                "domain_loss": domain_loss,
                "source_accuracy": jnp.mean(jnp.argmax(logits, -1) == ys),
                "domain_accuracy": jnp.mean((d_logits > 0) == (domains > 0.5)),
            }
            return label_loss + domain_loss, (metrics, mstate)

        (loss, (metrics, mstate)), grads = jax.value_and_grad(objective, has_aux=True)(state.params)
        params, opt_state = _apply(optimizer, grads, state.opt_state, state.params)
        return (
            state.replace(params=params, model_state=mstate, opt_state=opt_state),
            {"loss": loss, **metrics, "lambda": scale},
        )

    def evaluate(state: TrainState, x, y) -> Metrics:
        return model.metrics(state.params, state.model_state, x, y, train=False)[0]

    return TrainStep(init, update, evaluate, f"{model.name}{'' if adapt else '_source_only'}")


__all__ = ["dann_step", "gan_step"]
