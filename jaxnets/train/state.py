"""The training state: everything that changes during training, as one pytree (jit-, donate- and save-able)."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import optax
from flax import struct

from jaxnets.models import Model


class TrainState(struct.PyTreeNode):
    """Step count, trained parameters, non-trained model state (batch-norm statistics), optimiser state, and the
    run's PRNG key (a raw uint32[2] key; fixed for the run, per-epoch and per-step keys are folded in from it)."""

    step: jax.Array
    params: Any
    model_state: Any
    opt_state: Any
    key: jax.Array

    @classmethod
    def create(cls, params: Any, opt_state: Any, key: jax.Array, model_state: Any = None) -> TrainState:
        """A state at step 0: ``params`` and ``opt_state`` may be dicts of players (each with its own optimiser's
        state); ``key`` becomes the run's key (pass one not used for the initialisation)."""
        return cls(
            step=jnp.zeros((), jnp.int32),
            params=params,
            model_state={} if model_state is None else model_state,
            opt_state=opt_state,
            key=key,
        )


def create_train_state(model: Model, optimizer: optax.GradientTransformation, key: jax.Array) -> TrainState:
    """Initialise the model and optimiser from ``key``; the state's own key is split off the same key."""
    init_key, run_key = jax.random.split(key)
    params, model_state = model.init(init_key)
    return TrainState.create(params, optimizer.init(params), run_key, model_state)


def epoch_key(state: TrainState, epoch: int | jax.Array) -> jax.Array:
    """The key that shuffles epoch ``epoch`` (0-based): a pure function of the run key, so resuming reproduces it."""
    return jax.random.fold_in(jax.random.fold_in(state.key, 0), epoch)


def step_key(state: TrainState) -> jax.Array:
    """The key for the stochastic layers (dropout) at the current step."""
    return jax.random.fold_in(jax.random.fold_in(state.key, 1), state.step)
