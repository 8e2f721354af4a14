"""The model type: a layer with a fixed input shape, an output head, and input checking."""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxnets.losses import HEADS, loss_for, mean_squared_error, predict
from jaxnets.nn import Layer, PyTree, Shape

# objective(model, params, state, x, y, *, key, train) -> ({metric name: per-example values}, new state)
Objective = Callable[..., tuple[dict[str, jax.Array], PyTree]]


class InputShapes(dict):
    """The per-example shapes of a model with several inputs, by name (``{'image': (64, 64, 3), 'question':
    (12,)}``): a dict that hashes (a ``Model`` is a static argument of cached, compiled steps); never mutated."""

    def __hash__(self) -> int:  # type: ignore[override]
        return hash(tuple(sorted(self.items())))


def input_shapes(shape: Shape | Mapping[str, Shape]) -> Shape | InputShapes:
    """A model's ``input_shape`` as stored: a tuple of ints, or for several inputs an ``InputShapes`` of them."""
    if isinstance(shape, Mapping):
        return InputShapes({str(k): tuple(int(d) for d in v) for k, v in shape.items()})
    return tuple(int(d) for d in shape)


def shape_record(shape: Shape | Mapping[str, Shape]) -> list[int] | dict[str, list[int]]:
    """A model's ``input_shape`` as JSON holds it (lists); ``input_shapes`` reads it back."""
    if isinstance(shape, Mapping):
        return {k: list(v) for k, v in shape.items()}
    return list(shape)


def example_shape(x: Any) -> Shape | InputShapes:
    """The per-example shape of a batch: ``x.shape[1:]``, or for a dict of arrays (several inputs) the
    ``InputShapes`` of theirs."""
    if isinstance(x, Mapping):
        return InputShapes({str(k): tuple(np.shape(v)[1:]) for k, v in x.items()})
    return tuple(np.shape(x)[1:])


def num_examples(x: Any) -> int:
    """The number of examples in a batch or dataset (of one input array, or of a dict of them)."""
    leaves = jax.tree.leaves(x)
    return int(np.shape(leaves[0])[0]) if leaves else 0


def zeros_like_inputs(input_shape: Shape | Mapping[str, Shape], batch: int) -> Any:
    """A batch of zeros of a model's inputs (shape inference, tracing): an array, or a dict of them."""
    if isinstance(input_shape, Mapping):
        return {k: jnp.zeros((batch, *v)) for k, v in input_shape.items()}
    return jnp.zeros((batch, *input_shape))


@dataclass(frozen=True)
class Model:
    """A network ready to train: ``init(key) -> (params, state)``, ``apply(params, state, x) -> (outputs, state)``.

    ``head`` names the output head ('softmax', 'sigmoid', 'linear', 'perceptron') and so the loss that fits it;
    the outputs are the head's pre-activations (logits) except for 'linear'. A model of several inputs (a question
    and an image) has ``input_shape`` a dict of their shapes by name and takes ``x`` as a dict of arrays. Models that
    are not classifiers (autoencoders, language models) give an ``objective`` instead: see ``metrics``.
    ``finalize`` (optional) maps the means of the per-example metrics over a whole test set to the metrics reported
    (mean IoU from per-class counts).
    """

    name: str
    layer: Layer
    input_shape: Any  # a Shape, or (several inputs) a mapping of them by name: stored as a tuple or InputShapes
    head: str = "softmax"
    objective: Objective | None = None
    finalize: Callable[[dict[str, jax.Array]], dict[str, jax.Array]] | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "input_shape", input_shapes(self.input_shape))
        shapes = self.input_shape.items() if isinstance(self.input_shape, Mapping) else [("", self.input_shape)]
        for part, shape in shapes:
            check_sizes(self.name, **{f"input_shape{f'[{part!r}]' if part else ''}": shape})
        if self.head not in HEADS:
            raise ValueError(f"{self.name}: unknown output head {self.head!r}; choose one of {sorted(HEADS)}")

    def init(self, key: jax.Array) -> tuple[PyTree, PyTree]:
        """Initialise parameters and non-trained state for this model's input shape."""
        params, state, _ = self.layer.init(key, self.input_shape)  # (a tuple, or the InputShapes of several)
        return params, state

    def apply(
        self, params: PyTree, state: PyTree, x: Any, *, key: jax.Array | None = None, train: bool = False
    ) -> tuple[jax.Array, PyTree]:
        """Run the network on a batch ``x`` of shape ``(batch, *input_shape)`` (several inputs: a dict of such
        arrays); returns outputs and new state."""
        check_inputs(self, x)
        want_params, want_state = _init_shapes(self)
        _check_tree(self.name, "params", want_params, params)
        _check_tree(self.name, "state", want_state, state)
        return self.layer.apply(params, state, x, key=key, train=train)

    def metrics(
        self,
        params: PyTree,
        state: PyTree,
        x: Any,
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
        if np.shape(y) != (num_examples(x),):
            raise ValueError(
                f"{self.name}: labels must have shape (batch,) = ({num_examples(x)},), one class index "
                f"per example; got {np.shape(y)}"
            )
        outputs, state = self.apply(params, state, x, key=key, train=train)
        correct = (predict(self.head, outputs) == y).astype(jnp.float32)
        return {"loss": loss_for(self.head)(outputs, y), "accuracy": correct}, state


def check_inputs(model: Model, x: Any) -> None:
    """A one-line ``ValueError`` unless ``x`` is a batch of ``model``'s inputs (an array of shape (batch,
    *input_shape), or for several inputs a dict of such arrays, one per name, with one batch size)."""
    want = model.input_shape
    if isinstance(want, Mapping):
        if not isinstance(x, Mapping) or set(x) != set(want):
            named = sorted(x) if isinstance(x, Mapping) else f"an array of shape {tuple(np.shape(x))}"
            raise ValueError(f"{model.name} takes a dict of inputs {sorted(want)}; got {named}")
        sizes = {np.shape(v)[0] if np.ndim(v) else None for v in x.values()}
        if example_shape(x) != want or len(sizes) != 1:
            shapes = {k: ("batch", *v) for k, v in want.items()}
            given = {k: tuple(np.shape(v)) for k, v in x.items()}
            raise ValueError(f"{model.name} expects inputs of shapes {shapes} (one batch size); got {given}")
        return
    if isinstance(x, Mapping) or np.ndim(x) != len(want) + 1 or tuple(np.shape(x)[1:]) != want:
        got = f"a dict of {sorted(x)}" if isinstance(x, Mapping) else tuple(np.shape(x))
        raise ValueError(f"{model.name} expects input of shape (batch, {', '.join(map(str, want))}); got {got}")


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
