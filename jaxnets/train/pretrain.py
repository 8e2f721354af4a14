"""Greedy layer-wise pretraining: a stack of one-hidden-layer models, each trained by ``fit`` without labels on the
codes of the one below, giving the starting weights of a deep sigmoid network. The layer model is an RBM (Hinton,
Osindero & Teh 2006: a deep belief net's pretraining) or a denoising autoencoder (Vincent, Larochelle, Lajoie, Bengio
& Manzagol 2010: stacked denoising autoencoders). Both encode by the same sigmoid layer, ``sigmoid(v W + b)``, the
RBM's p(h|v) and the DAE's encoder, which is also ``mlp(activation='sigmoid')``'s hidden layer."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxnets.models import Reconstruction, dae_layer, hidden_probs, rbm
from jaxnets.train.loop import fit

Array = jax.Array
# the layer models pretrain_stack can stack -> the name of their sigmoid encoder's {'w', 'b'} in their parameters
LAYERS = {"rbm": "rbm", "dae": "encoder"}


def _batched(fn: Callable[[Array], Array], x: np.ndarray, batch: int = 1000) -> np.ndarray:
    return np.concatenate([np.asarray(fn(jnp.asarray(x[i : i + batch]))) for i in range(0, len(x), batch)])


def pretrain_stack(
    sizes: Sequence[int],
    x: np.ndarray,
    *,
    layer: str = "rbm",
    epochs: int = 1,
    batch_size: int = 100,
    lr: float = 0.1,
    momentum: float = 0.5,
    weight_decay: float = 0.0,
    k: int = 1,
    corruption: str = "mask",
    level: float = 0.25,
    seed: int = 0,
    log: Callable[[str], None] | None = None,
) -> dict[str, dict[str, Array]]:
    """Greedy layer-wise pretraining: train a ``layer`` model with ``sizes[0]`` hidden units on ``x`` (flattened, in
    [0, 1]) with ``fit`` (SGD + momentum), then one on its codes ``sigmoid(x W + b)``, and so on. ``layer='rbm'``
    (Hinton, Osindero & Teh 2006): RBMs trained by CD-``k``; ``'dae'`` (Vincent et al. 2010, stacked denoising
    autoencoders): one-layer DAEs whose inputs are corrupted by ``corruption`` at ``level``. Returns
    ``{'hidden1': {'w', 'b'}, 'hidden2': ...}``: the parameter names of ``mlp``'s hidden layers, so
    ``with_initial_params(mlp(hidden=sizes, activation='sigmoid'), stack)`` starts a deep sigmoid network there."""
    if layer not in LAYERS:
        raise ValueError(f"pretrain_stack: unknown layer {layer!r}; choose one of {sorted(LAYERS)}")
    if layer == "dae":
        Reconstruction(corruption, level)  # checks corruption and level before any training
    inputs = np.asarray(x, np.float32).reshape(len(x), -1)
    labels = np.zeros(len(inputs), np.int32)
    stack: dict[str, dict[str, Array]] = {}
    for i, size in enumerate(sizes, start=1):
        visible = inputs.shape[1]
        if layer == "rbm":
            model = rbm((visible,), hidden=size, k=k)
            how = f"CD-{k}"
        else:
            model = dae_layer(visible, size, corruption=corruption, level=level)
            how = f"denoising ({corruption} noise {level})"
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
        params = jax.device_get(result.state.params[LAYERS[layer]])
        if log is not None:
            last = result.history[-1]
            log(
                f"{layer} {i} ({visible}-{size}): {epochs} epoch(s) of {how}, reconstruction squared error "
                f"{last['train_squared_error']:.3f} per example"
            )
        stack[f"hidden{i}"] = {"w": jnp.asarray(params["w"]), "b": jnp.asarray(params["b"])}
        inputs = _batched(jax.jit(lambda v, p=stack[f"hidden{i}"]: hidden_probs(p, v)), inputs)
    return stack
