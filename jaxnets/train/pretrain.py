"""Greedy layer-wise pretraining (Hinton, Osindero & Teh 2006): a stack of RBMs, each trained by ``fit`` on the hidden
probabilities of the one below, giving the starting weights of a deep sigmoid network."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxnets.models import hidden_probs, rbm
from jaxnets.train.loop import fit

Array = jax.Array


def _batched(fn: Callable[[Array], Array], x: np.ndarray, batch: int = 1000) -> np.ndarray:
    return np.concatenate([np.asarray(fn(jnp.asarray(x[i : i + batch]))) for i in range(0, len(x), batch)])


def pretrain_stack(
    sizes: Sequence[int],
    x: np.ndarray,
    *,
    epochs: int = 1,
    batch_size: int = 100,
    lr: float = 0.1,
    momentum: float = 0.5,
    weight_decay: float = 0.0,
    k: int = 1,
    seed: int = 0,
    log: Callable[[str], None] | None = None,
) -> dict[str, dict[str, Array]]:
    """Greedy layer-wise pretraining (Hinton, Osindero & Teh 2006): train an RBM with ``sizes[0]`` hidden units on
    ``x`` (flattened, in [0, 1]) by CD-``k`` with ``fit`` (SGD + momentum), then one on its hidden probabilities, and
    so on. Returns ``{'hidden1': {'w', 'b'}, 'hidden2': ...}``: the parameter names of ``mlp``'s hidden layers, so
    ``with_initial_params(mlp(hidden=sizes, activation='sigmoid'), stack)`` starts a deep sigmoid network there."""
    inputs = np.asarray(x, np.float32).reshape(len(x), -1)
    labels = np.zeros(len(inputs), np.int32)
    stack: dict[str, dict[str, Array]] = {}
    for i, size in enumerate(sizes, start=1):
        model = rbm((inputs.shape[1],), hidden=size, k=k)
        tx = optax.sgd(lr, momentum=momentum or None)
        if weight_decay:
            tx = optax.chain(optax.add_decayed_weights(weight_decay), tx)
        result = fit(
            model,
            inputs,
            labels,
            optimizer=tx,
            epochs=epochs,
            batch_size=batch_size,
            seed=seed + i,
            progress=False,
            log=lambda _: None,
        )
        params = jax.device_get(result.state.params["rbm"])
        if log is not None:
            last = result.history[-1]
            log(
                f"rbm {i} ({inputs.shape[1]}-{size}): {epochs} epoch(s) of CD-{k}, reconstruction squared error "
                f"{last['train_squared_error']:.3f} per example"
            )
        stack[f"hidden{i}"] = {"w": jnp.asarray(params["w"]), "b": jnp.asarray(params["b"])}
        inputs = _batched(jax.jit(lambda v, p=params: hidden_probs(p, v)), inputs)
    return stack
