"""The model type: a layer with a fixed input shape, an output head, and input checking."""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np

from jaxnets.losses import HEADS, loss_for, mean_squared_error, predict
from jaxnets.nn import Layer, PyTree, Shape

# objective(model, params, state, x, y, *, key, train) -> ({metric name: per-example values}, new state)
Objective = Callable[..., tuple[dict[str, jax.Array], PyTree]]


@dataclass(frozen=True)
class Model:
    """A network ready to train: ``init(key) -> (params, state)``, ``apply(params, state, x) -> (outputs, state)``.

    ``head`` names the output head ('softmax', 'sigmoid', 'linear', 'perceptron') and so the loss that fits it;
    the outputs are the head's pre-activations (logits) except for 'linear'. Models that are not classifiers
    (autoencoders, language models) give an ``objective`` instead: see ``metrics``. ``finalize`` (optional) maps the
    means of the per-example metrics over a whole test set to the metrics reported (mean IoU from per-class counts).
    """

    name: str
    layer: Layer
    input_shape: Shape
    head: str = "softmax"
    objective: Objective | None = None
    finalize: Callable[[dict[str, jax.Array]], dict[str, jax.Array]] | None = None

    def __post_init__(self) -> None:
        check_sizes(self.name, input_shape=self.input_shape)
        if self.head not in HEADS:
            raise ValueError(f"{self.name}: unknown output head {self.head!r}; choose one of {sorted(HEADS)}")

    def init(self, key: jax.Array) -> tuple[PyTree, PyTree]:
        """Initialise parameters and non-trained state for this model's input shape."""
        params, state, _ = self.layer.init(key, self.input_shape)
        return params, state

    def apply(
        self, params: PyTree, state: PyTree, x: jax.Array, *, key: jax.Array | None = None, train: bool = False
    ) -> tuple[jax.Array, PyTree]:
        """Run the network on a batch ``x`` of shape ``(batch, *input_shape)``; returns outputs and new state."""
        if tuple(x.shape[1:]) != tuple(self.input_shape) or x.ndim != len(self.input_shape) + 1:
            raise ValueError(
                f"{self.name} expects input of shape (batch, {', '.join(map(str, self.input_shape))}); "
                f"got {tuple(x.shape)}"
            )
        want_params, want_state = _init_shapes(self)
        _check_tree(self.name, "params", want_params, params)
        _check_tree(self.name, "state", want_state, state)
        return self.layer.apply(params, state, x, key=key, train=train)

    def metrics(
        self,
        params: PyTree,
        state: PyTree,
        x: jax.Array,
        y: jax.Array,
        *,
        key: jax.Array | None = None,
        train: bool = False,
    ) -> tuple[dict[str, jax.Array], PyTree]:
        """Per-example metrics of a batch, each of shape ``(batch,)``, and the new state. ``'loss'`` is always there:
        its batch mean is what training minimises. Classifiers (integer labels) also report ``'accuracy'``; a 'linear'
        head given float targets of the outputs' shape is a regression onto them (mean squared error)."""
        if self.objective is not None:
            return self.objective(self, params, state, x, y, key=key, train=train)
        dtype = jnp.result_type(y)
        if self.head == "linear" and jnp.issubdtype(dtype, jnp.floating):  # regression onto real-valued targets
            outputs, state = self.apply(params, state, x, key=key, train=train)
            if np.shape(y) != outputs.shape:
                raise ValueError(
                    f"{self.name}: regression targets must have the outputs' shape {outputs.shape}; got {np.shape(y)}"
                )
            return {"loss": mean_squared_error(outputs, y)}, state
        if not (jnp.issubdtype(dtype, jnp.integer) or dtype == jnp.bool_):
            raise ValueError(
                f"{self.name}: labels must be integer class indices (a {self.head} classifier); got "
                f"{dtype} labels: pass y.astype('int32')"
            )
        if np.shape(y) != np.shape(x)[:1]:
            raise ValueError(
                f"{self.name}: labels must have shape (batch,) = ({np.shape(x)[0]},), one class index "
                f"per example; got {np.shape(y)}"
            )
        outputs, state = self.apply(params, state, x, key=key, train=train)
        correct = (predict(self.head, outputs) == y).astype(jnp.float32)
        return {"loss": loss_for(self.head)(outputs, y), "accuracy": correct}, state


def check_sizes(model: str, **sizes: int | Sequence[int] | None) -> None:
    """A one-line ``ValueError`` naming the first argument that holds a size below 1 (a count of units, classes,
    channels or an input dimension; ``None`` is skipped): ``check_sizes('mlp', num_classes=0)`` fails with
    "mlp: num_classes must be >= 1; got 0"."""
    for arg, value in sizes.items():
        if value is None:
            continue
        values = tuple(value) if isinstance(value, Sequence) else (value,)
        if any(int(v) < 1 for v in values):
            which = "every entry of " if isinstance(value, Sequence) else ""
            raise ValueError(f"{model}: {which}{arg} must be >= 1; got {value!r}")


@functools.lru_cache(maxsize=64)
def _init_shapes(model: Model) -> tuple[dict[str, tuple[int, ...]], dict[str, tuple[int, ...]]]:
    """{path: shape} of the params and of the state ``model.init`` makes (traced once per model, nothing computed)."""
    params, state = jax.eval_shape(model.init, jax.ShapeDtypeStruct((2,), jnp.uint32))
    return _shapes(params), _shapes(state)


def _shapes(tree) -> dict[str, tuple[int, ...]]:
    return {
        jax.tree_util.keystr(path): tuple(np.shape(leaf))
        for path, leaf in jax.tree_util.tree_flatten_with_path(tree)[0]
    }


def _check_tree(name: str, kind: str, want: dict[str, tuple[int, ...]], tree) -> None:
    """``ValueError`` naming the first array of ``tree`` (params or state) that ``model.init`` would not have made:
    at trace time under jit, a few microseconds per call in eager mode."""
    got = _shapes(tree)
    if got == want:
        return
    hint = "(made by another model's init, or for another input shape?)"
    missing = next((path for path in want if path not in got), None)
    extra = next((path for path in got if path not in want), None)
    if missing is not None or extra is not None:
        lack = f"lack {kind}{missing} of shape {want[missing]}" if missing is not None else ""
        hold = f"hold {kind}{extra}, which {name} does not have" if extra is not None else ""
        both = " and ".join(filter(None, (lack, hold)))
        raise ValueError(f"{name}: the {kind} given are not this model's: they {both} {hint}")
    path = next(path for path in want if got[path] != want[path])
    raise ValueError(f"{name}: {kind}{path} has shape {got[path]} but {name} expects {want[path]} {hint}")
