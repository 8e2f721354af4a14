"""The jit-compiled training step (value_and_grad + optax) and masked, fixed-shape evaluation."""

from __future__ import annotations

import functools
from collections.abc import Callable

import jax
import jax.numpy as jnp
import optax

from jaxnets.data.batching import padded_batches
from jaxnets.models.base import Model
from jaxnets.train.parallel import Shardings, constrain_state, eval_batches, gather_batch, shard_batch
from jaxnets.train.state import TrainState, step_key

Metrics = dict[str, jax.Array]


def _update(model: Model, optimizer: optax.GradientTransformation, state: TrainState, x: jax.Array,
            y: jax.Array) -> tuple[TrainState, Metrics]:
    """One optimiser step on the batch mean of the model's loss; returns the new state and the batch's metrics.

    A step whose loss is NaN or infinite is not committed: the state comes back unchanged, its step count too, so
    the last good parameters survive a divergence and a caller sees it from the count (``fit`` stops there). The
    check is a ``cond`` on the loss: no host read, no copy of the state."""

    def objective(params):
        metrics, model_state = model.metrics(params, state.model_state, x, y, key=step_key(state), train=True)
        metrics = {k: v.mean() for k, v in metrics.items()}
        return metrics["loss"], (metrics, model_state)

    (_, (metrics, model_state)), grads = jax.value_and_grad(objective, has_aux=True)(state.params)

    def commit(state):
        updates, opt_state = optimizer.update(grads, state.opt_state, state.params)
        return state.replace(step=state.step + 1, params=optax.apply_updates(state.params, updates),
                             model_state=model_state, opt_state=opt_state)

    return jax.lax.cond(jnp.isfinite(metrics["loss"]), commit, lambda state: state, state), metrics


def make_train_step(model: Model, optimizer: optax.GradientTransformation, shardings: Shardings | None = None
                    ) -> Callable[[TrainState, jax.Array, jax.Array], tuple[TrainState, Metrics]]:
    """``step(state, x, y) -> (state, metrics)`` (batch means of ``model.metrics``) on one batch, jit-compiled;
    ``state`` is donated."""

    def step(state, x, y):
        return _update(model, optimizer, state, shard_batch(x, shardings), shard_batch(y, shardings))

    return jax.jit(step, donate_argnums=0)


def make_indexed_train_step(model: Model, optimizer: optax.GradientTransformation, shardings: Shardings | None = None
                            ) -> Callable[[TrainState, jax.Array, jax.Array, jax.Array], tuple[TrainState, Metrics]]:
    """``step(state, data_x, data_y, batches)``: gathers batch ``batches[state.step % len(batches)]`` from the
    device-resident data inside the compiled step (no host round-trip), then updates; ``state`` is donated. (Cached:
    ``fit`` called again with the same model and optimiser reuses the compiled step.)

    With ``shardings``, ``data_x``/``data_y`` come from ``parallel.place_local_data`` and ``batches`` from
    ``parallel.epoch_indices``: each device gathers its slice of the batch from its own copy of its process's data,
    and the state stays replicated."""
    try:
        return _cached_indexed_train_step(model, optimizer, shardings)
    except TypeError:  # an unhashable optimiser: build it afresh
        return _indexed_train_step(model, optimizer, shardings)


@functools.lru_cache(maxsize=16)
def _cached_indexed_train_step(model, optimizer, shardings):
    return _indexed_train_step(model, optimizer, shardings)


def _indexed_train_step(model: Model, optimizer: optax.GradientTransformation, shardings: Shardings | None):
    """``make_indexed_train_step``, uncached."""

    def step(state, data_x, data_y, batches):
        idx = batches[state.step % batches.shape[0]]
        if shardings is None:
            return _update(model, optimizer, state, data_x[idx], data_y[idx])
        x, y = gather_batch(data_x, data_y, idx, shardings)
        state, metrics = _update(model, optimizer, constrain_state(state, shardings), x, y)
        return constrain_state(state, shardings), jax.lax.with_sharding_constraint(metrics, shardings.replicated)

    if shardings is None or shardings.shard_state:
        return jax.jit(step, donate_argnums=0)
    return jax.jit(step, donate_argnums=0, out_shardings=shardings.replicated)


@functools.lru_cache(maxsize=32)
def make_eval_fn(model: Model, batch_size: int = 1000, shardings: Shardings | None = None
                 ) -> Callable[..., Metrics]:
    """``eval(params, model_state, x, y) -> metrics``: the mean of each of ``model.metrics`` over every example exactly
    once, computed in fixed-shape batches of ``batch_size`` (the last one padded and masked), jit-compiled."""

    def evaluate_all(params, model_state, x, y):
        bx, by, bmask = padded_batches(x, y, batch_size)

        def batch_sums(xb, yb, mb):
            metrics, _ = model.metrics(params, model_state, xb, yb, train=False)
            return {k: jnp.sum(v * mb.astype(v.dtype)) for k, v in metrics.items()}

        def body(totals, batch):
            sums = batch_sums(*(shard_batch(a, shardings) for a in batch))
            return jax.tree.map(jnp.add, totals, sums), None

        zeros = jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype), jax.eval_shape(batch_sums, bx[0], by[0], bmask[0]))
        totals, _ = jax.lax.scan(body, zeros, (bx, by, bmask))
        return {k: v / x.shape[0] for k, v in totals.items()}

    return jax.jit(evaluate_all)


@functools.lru_cache(maxsize=32)
def _make_sharded_eval_fn(model: Model, shardings: Shardings) -> Callable[..., Metrics]:
    """``eval(params, model_state, bx, by, bmask)``: the masked mean of ``model.metrics`` over global batches that
    are already split over the mesh (``parallel.eval_batches``)."""

    def evaluate_all(params, model_state, bx, by, bmask):
        def body(totals, batch):
            xb, yb, mb = batch
            metrics, _ = model.metrics(params, model_state, xb, yb, train=False)
            return jax.tree.map(jnp.add, totals, {k: jnp.sum(v * mb.astype(v.dtype)) for k, v in metrics.items()}), None

        shapes = jax.eval_shape(lambda: model.metrics(params, model_state, bx[0], by[0], train=False)[0])
        totals, _ = jax.lax.scan(body, jax.tree.map(lambda s: jnp.zeros((), s.dtype), shapes), (bx, by, bmask))
        return {k: v / jnp.sum(bmask) for k, v in totals.items()}

    return jax.jit(evaluate_all, out_shardings=shardings.replicated)


def evaluate(model: Model, params, model_state, x, y, batch_size: int = 1000,
             shardings: Shardings | None = None) -> dict[str, float]:
    """Mean of each of the model's metrics (loss, accuracy, ...) over all of ``x``, ``y`` (each example once).

    With ``shardings`` each batch is split over the mesh; with several processes, ``x``, ``y`` are this process's
    share of the examples and the means are over every process's examples."""
    if shardings is None:
        batch_size = max(1, min(batch_size, len(x)))
        metrics = make_eval_fn(model, batch_size, None)(params, model_state, jnp.asarray(x), jnp.asarray(y))
    else:
        batch_size = -(-max(1, batch_size) // shardings.num_devices) * shardings.num_devices
        metrics = _make_sharded_eval_fn(model, shardings)(params, model_state,
                                                         *eval_batches(x, y, batch_size, shardings))
    return {k: float(v) for k, v in metrics.items()}
