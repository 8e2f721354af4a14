"""The jit-compiled training step (value_and_grad + optax) and masked, fixed-shape evaluation."""

from __future__ import annotations

import functools
from collections.abc import Callable

import jax
import jax.numpy as jnp
import optax

from jaxnets.data.batching import padded_batches
from jaxnets.losses import loss_for, predict
from jaxnets.models.base import Model
from jaxnets.train.parallel import Shardings, shard_batch
from jaxnets.train.state import TrainState, step_key

Metrics = dict[str, jax.Array]


def _update(model: Model, optimizer: optax.GradientTransformation, state: TrainState, x: jax.Array,
            y: jax.Array) -> tuple[TrainState, Metrics]:
    """One optimiser step on the batch mean of the head's loss; returns the new state and the batch's metrics."""
    loss_fn = loss_for(model.head)

    def objective(params):
        outputs, model_state = model.apply(params, state.model_state, x, key=step_key(state), train=True)
        return loss_fn(outputs, y).mean(), (outputs, model_state)

    (loss, (outputs, model_state)), grads = jax.value_and_grad(objective, has_aux=True)(state.params)
    updates, opt_state = optimizer.update(grads, state.opt_state, state.params)
    state = state.replace(step=state.step + 1, params=optax.apply_updates(state.params, updates),
                          model_state=model_state, opt_state=opt_state)
    return state, {"loss": loss, "accuracy": jnp.mean(predict(model.head, outputs) == y)}


def make_train_step(model: Model, optimizer: optax.GradientTransformation, shardings: Shardings | None = None
                    ) -> Callable[[TrainState, jax.Array, jax.Array], tuple[TrainState, Metrics]]:
    """``step(state, x, y) -> (state, {'loss', 'accuracy'})`` on one batch, jit-compiled; ``state`` is donated."""

    def step(state, x, y):
        return _update(model, optimizer, state, shard_batch(x, shardings), shard_batch(y, shardings))

    return jax.jit(step, donate_argnums=0)


def make_indexed_train_step(model: Model, optimizer: optax.GradientTransformation, shardings: Shardings | None = None
                            ) -> Callable[[TrainState, jax.Array, jax.Array, jax.Array], tuple[TrainState, Metrics]]:
    """``step(state, data_x, data_y, batches)``: gathers batch ``batches[state.step % len(batches)]`` from the
    device-resident data inside the compiled step (no host round-trip), then updates; ``state`` is donated."""

    def step(state, data_x, data_y, batches):
        idx = batches[state.step % batches.shape[0]]
        x, y = shard_batch(data_x[idx], shardings), shard_batch(data_y[idx], shardings)
        return _update(model, optimizer, state, x, y)

    return jax.jit(step, donate_argnums=0)


@functools.lru_cache(maxsize=32)
def make_eval_fn(model: Model, batch_size: int = 1000, shardings: Shardings | None = None
                 ) -> Callable[..., Metrics]:
    """``eval(params, model_state, x, y) -> {'loss', 'accuracy'}``: mean over every example exactly once, computed
    in fixed-shape batches of ``batch_size`` (the last one padded and masked), jit-compiled."""
    loss_fn = loss_for(model.head)

    def evaluate_all(params, model_state, x, y):
        bx, by, bmask = padded_batches(x, y, batch_size)

        def body(totals, batch):
            xb, yb, mb = (shard_batch(a, shardings) for a in batch)
            outputs, _ = model.apply(params, model_state, xb, train=False)
            mb = mb.astype(jnp.float32)
            correct = (predict(model.head, outputs) == yb).astype(jnp.float32)
            return (totals[0] + jnp.sum(loss_fn(outputs, yb) * mb), totals[1] + jnp.sum(correct * mb)), None

        (loss, correct), _ = jax.lax.scan(body, (jnp.zeros(()), jnp.zeros(())), (bx, by, bmask))
        return {"loss": loss / x.shape[0], "accuracy": correct / x.shape[0]}

    return jax.jit(evaluate_all)


def evaluate(model: Model, params, model_state, x, y, batch_size: int = 1000,
             shardings: Shardings | None = None) -> dict[str, float]:
    """Mean loss and accuracy of the model over all of ``x``, ``y`` (each example counted exactly once)."""
    batch_size = max(1, min(batch_size, len(x)))
    if shardings is not None:
        batch_size = -(-batch_size // shardings.num_devices) * shardings.num_devices
    metrics = make_eval_fn(model, batch_size, shardings)(params, model_state, jnp.asarray(x), jnp.asarray(y))
    return {k: float(v) for k, v in metrics.items()}
