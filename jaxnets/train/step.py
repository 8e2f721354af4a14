"""The training step, unit of extension of the loop: ``TrainStep`` (init, update, evaluate), ``supervised`` (a
Model's objective with one optax optimiser), the guard that refuses non-finite steps, the jitted forms ``fit`` runs,
and masked, fixed-shape evaluation."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from jaxnets.data.batching import padded_batches
from jaxnets.models import Model
from jaxnets.train.parallel import Shardings, constrain_state, eval_batches, gather_batch, shard_batch
from jaxnets.train.state import TrainState, create_train_state, step_key

Metrics = dict[str, jax.Array]
Batch = tuple[Any, Any]  # (x, y): each a pytree of arrays with the examples first (y may be None)


class TrainStep(NamedTuple):
    """What ``fit`` trains: ``init(key) -> TrainState``; ``update(state, batch, key) -> (state, metrics)``, pure and
    un-jitted, where ``batch`` is ``(x, y)`` and ``metrics`` a dict of scalars ('loss', or one per player); and
    optionally ``evaluate(state, x, y) -> {name: per-example values}`` for the test set. ``update`` need not count
    steps: the loop advances ``state.step`` and keeps the old state when any metric is NaN or infinite. ``name``
    is recorded in the run's config. Per-example values of shape ``(batch, k)`` (counts, such as the per-class
    intersections and unions of mean IoU) are averaged like the scalars; ``finalize``, given, maps the dict of means
    over the whole test set to the scalar metrics reported (``Model.finalize``)."""

    init: Callable[[jax.Array], TrainState]
    update: Callable[[TrainState, Batch, jax.Array], tuple[TrainState, Metrics]]
    evaluate: Callable[[TrainState, Any, Any], Metrics] | None = None
    name: str = "train_step"
    finalize: Callable[[Metrics], Metrics] | None = None


def supervised(model: Model, optimizer: optax.GradientTransformation) -> TrainStep:
    """The single-objective step: one ``optimizer`` step on the batch mean of ``model.metrics``' 'loss' (the model's
    objective), with dropout keys and batch-norm statistics; evaluation reports every one of ``model.metrics``.
    (Cached: the same model and optimiser give the same step, so its compiled forms are reused.)"""
    try:
        return _cached_supervised(model, optimizer)
    except TypeError:  # an unhashable optimiser
        return _supervised(model, optimizer)


@functools.lru_cache(maxsize=32)
def _cached_supervised(model: Model, optimizer: optax.GradientTransformation) -> TrainStep:
    return _supervised(model, optimizer)


def _supervised(model: Model, optimizer: optax.GradientTransformation) -> TrainStep:
    def update(state: TrainState, batch: Batch, key: jax.Array) -> tuple[TrainState, Metrics]:
        x, y = batch

        def objective(params):
            metrics, model_state = model.metrics(params, state.model_state, x, y, key=key, train=True)
            metrics = {k: v.mean() for k, v in metrics.items()}
            return metrics["loss"], (metrics, model_state)

        (_, (metrics, model_state)), grads = jax.value_and_grad(objective, has_aux=True)(state.params)
        updates, opt_state = optimizer.update(grads, state.opt_state, state.params)
        return state.replace(
            params=optax.apply_updates(state.params, updates), model_state=model_state, opt_state=opt_state
        ), metrics

    def evaluate(state: TrainState, x, y) -> Metrics:
        return model.metrics(state.params, state.model_state, x, y, train=False)[0]

    return TrainStep(
        functools.partial(create_train_state, model, optimizer), update, evaluate, model.name, model.finalize
    )


def guarded(train_step: TrainStep) -> Callable[[TrainState, Batch], tuple[TrainState, Metrics]]:
    """``step(state, batch) -> (state, metrics)``: ``train_step.update`` with the step's key, the step count advanced,
    and not committed (the state comes back unchanged, its count too) when any metric is NaN or infinite, so the last
    good state survives a divergence and the caller sees it from the count. The choice is a select per state array:
    no host read, no branch."""

    def step(state: TrainState, batch: Batch) -> tuple[TrainState, Metrics]:
        new, metrics = train_step.update(state, batch, step_key(state))
        new = new.replace(step=state.step + 1)
        if jax.tree.structure(new) != jax.tree.structure(state):  # type: ignore[operator]  # jaxlib: no PyTreeDef stub
            raise ValueError(
                f"{train_step.name}: update must return a state of the structure it was given; got "
                f"{jax.tree.structure(new)} for {jax.tree.structure(state)}"
            )
        ok = jnp.all(
            jnp.stack(
                [jnp.all(jnp.isfinite(v)) for v in jax.tree.leaves(metrics) if jnp.issubdtype(v.dtype, jnp.inexact)]
                or [jnp.bool_(True)]
            )
        )
        return jax.tree.map(lambda a, b: jnp.where(ok, a, b).astype(b.dtype), new, state), metrics

    return step


def make_train_step(
    model: Model, optimizer: optax.GradientTransformation, shardings: Shardings | None = None
) -> Callable[[TrainState, jax.Array, jax.Array], tuple[TrainState, Metrics]]:
    """``step(state, x, y) -> (state, metrics)`` (batch means of ``model.metrics``) on one batch, jit-compiled;
    ``state`` is donated; a step with a non-finite loss is not committed (see ``guarded``)."""
    update = guarded(supervised(model, optimizer))

    def step(state, x, y):
        return update(state, (shard_batch(x, shardings), shard_batch(y, shardings)))

    return jax.jit(step, donate_argnums=0)


def indexed_train_step(
    train_step: TrainStep, shardings: Shardings | None = None
) -> Callable[[TrainState, Batch, jax.Array], tuple[TrainState, Metrics]]:
    """``step(state, data, batches)``, jit-compiled, ``state`` donated: gathers batch ``batches[state.step %
    len(batches)]`` of every array of ``data`` (``(x, y)``, device-resident) inside the compiled step (no host
    round-trip), then runs the guarded update (cached per step and shardings).

    With ``shardings``, ``data`` comes from ``parallel.place_local_data`` and ``batches`` from
    ``parallel.epoch_indices``: each device gathers its slice of the batch from its own copy of its process's data,
    and the state stays where ``parallel.place_state`` put it."""
    try:
        return _cached_indexed_train_step(train_step, shardings)
    except TypeError:  # an unhashable step: build it afresh
        return _indexed_train_step(train_step, shardings)


@functools.lru_cache(maxsize=16)
def _cached_indexed_train_step(train_step: TrainStep, shardings: Shardings | None):
    return _indexed_train_step(train_step, shardings)


def _indexed_train_step(train_step: TrainStep, shardings: Shardings | None):
    update = guarded(train_step)

    def step(state, data, batches):
        idx = batches[state.step % batches.shape[0]]
        if shardings is None:
            return update(state, jax.tree.map(lambda a: a[idx], data))
        state, metrics = update(constrain_state(state, shardings), gather_batch(data, idx, shardings))
        return constrain_state(state, shardings), jax.lax.with_sharding_constraint(metrics, shardings.replicated)

    if shardings is None or shardings.shard_state:
        return jax.jit(step, donate_argnums=0)
    return jax.jit(step, donate_argnums=0, out_shardings=shardings.replicated)


def make_indexed_train_step(
    model: Model, optimizer: optax.GradientTransformation, shardings: Shardings | None = None
) -> Callable[[TrainState, jax.Array, jax.Array, jax.Array], tuple[TrainState, Metrics]]:
    """``step(state, data_x, data_y, batches)``: ``indexed_train_step`` of the model's ``supervised`` step."""
    step = indexed_train_step(supervised(model, optimizer), shardings)
    return lambda state, data_x, data_y, batches: step(state, (data_x, data_y), batches)


def _evaluator(train_step: TrainStep) -> Callable[[TrainState, Any, Any], Metrics]:
    if train_step.evaluate is None:
        raise ValueError(f"{train_step.name} has no evaluate: it cannot score test data (pass none)")
    return train_step.evaluate


def _masked_sums(
    evaluate: Callable[[TrainState, Any, Any], Metrics], state: TrainState, x, y, mask: jax.Array
) -> Metrics:
    metrics = evaluate(state, x, y)
    return {k: jnp.sum(v * mask.reshape(-1, *(1,) * (v.ndim - 1)).astype(v.dtype), axis=0) for k, v in metrics.items()}


@functools.lru_cache(maxsize=32)
def _eval_fn(train_step: TrainStep, batch_size: int, shardings: Shardings | None) -> Callable[..., Metrics]:
    """``eval(state, x, y)``: the mean of each of ``train_step.evaluate`` over every example exactly once (then
    ``train_step.finalize``), in fixed-shape batches of ``batch_size`` (the last one padded and masked),
    jit-compiled. With ``shardings``, ``x``, ``y`` and a mask come already folded into batches split over the mesh
    (``parallel.eval_batches``)."""

    evaluate = _evaluator(train_step)

    def body(state, totals, batch):
        sums = _masked_sums(evaluate, state, *shard_batch(batch, shardings))
        return jax.tree.map(jnp.add, totals, sums), None

    def evaluate_all(state, x, y, mask=None):
        if mask is None:
            x, y, mask = padded_batches(x, y, batch_size)
        first = jax.tree.map(lambda a: a[0], (x, y, mask))
        zeros = jax.tree.map(
            lambda s: jnp.zeros(s.shape, s.dtype),
            jax.eval_shape(functools.partial(_masked_sums, evaluate), state, *first),
        )
        totals, _ = jax.lax.scan(functools.partial(body, state), zeros, (x, y, mask))
        means = {k: v / jnp.sum(mask) for k, v in totals.items()}
        return means if train_step.finalize is None else train_step.finalize(means)

    return jax.jit(evaluate_all) if shardings is None else jax.jit(evaluate_all, out_shardings=shardings.replicated)


def evaluate_state(
    train_step: TrainStep, state: TrainState, x, y, batch_size: int = 1000, shardings: Shardings | None = None
) -> dict[str, float]:
    """Mean of each of ``train_step.evaluate``'s metrics over all of ``x``, ``y`` (pytrees; each example once).

    With ``shardings`` each batch is split over the mesh; with several processes, ``x``, ``y`` are this process's
    share of the examples and the means are over every process's examples."""
    _evaluator(train_step)  # (fails first when the step cannot evaluate)
    if shardings is None:
        size = max(1, min(batch_size, len(jax.tree.leaves(x)[0])))
        metrics = _eval_fn(train_step, size, None)(state, *jax.tree.map(jnp.asarray, (x, y)))
    else:
        size = -(-max(1, batch_size) // shardings.num_devices) * shardings.num_devices
        metrics = _eval_fn(train_step, size, shardings)(state, *eval_batches(x, y, size, shardings))
    vector = next((k for k, v in metrics.items() if jnp.ndim(v)), None)
    if vector is not None:
        raise ValueError(
            f"{train_step.name}: metric {vector!r} has shape {jnp.shape(metrics[vector])}, not a number: give the "
            "model (or step) a finalize that reduces it to scalars"
        )
    return {k: float(v) for k, v in metrics.items()}


_NO_OPTIMIZER = optax.identity()  # (evaluation only: a model's supervised step without training)


def _bare_state(params, model_state) -> TrainState:
    return TrainState(
        step=jnp.zeros((), jnp.int32),
        params=params,
        model_state=model_state,
        opt_state=None,
        key=jnp.zeros((2,), jnp.uint32),
    )  # (a placeholder key: evaluation draws no randomness)


def make_eval_fn(model: Model, batch_size: int = 1000, shardings: Shardings | None = None) -> Callable[..., Metrics]:
    """``eval(params, model_state, x, y) -> metrics``: the mean of each of ``model.metrics`` over every example exactly
    once, computed in fixed-shape batches of ``batch_size`` (the last one padded and masked), jit-compiled."""
    fn = _eval_fn(supervised(model, _NO_OPTIMIZER), batch_size, shardings)
    return lambda params, model_state, x, y: fn(_bare_state(params, model_state), x, y)


def evaluate(
    model: Model, params, model_state, x, y, batch_size: int = 1000, shardings: Shardings | None = None
) -> dict[str, float]:
    """Mean of each of the model's metrics (loss, accuracy, ...) over all of ``x``, ``y`` (each example once).

    With ``shardings`` each batch is split over the mesh; with several processes, ``x``, ``y`` are this process's
    share of the examples and the means are over every process's examples."""
    return evaluate_state(
        supervised(model, _NO_OPTIMIZER), _bare_state(params, model_state), x, y, batch_size, shardings
    )
