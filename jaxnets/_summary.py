"""Parameter counts per layer and in total; per-layer output shapes of a model, computed without allocating it.

``jaxnets-summary MODEL [--input-shape 224,224,3] [--num-classes 1000] [--depth N]`` (``jaxnets.cli.summary``)
prints the table of any registered model.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import jax

from jaxnets.models._base import Model
from jaxnets.nn import Layer, PyTree, Shape, recording_init


def _size(tree: PyTree) -> int:
    return sum(math.prod(leaf.shape) for leaf in jax.tree_util.tree_leaves(tree))


def count_params(params: PyTree) -> dict[str, int]:
    """Number of trainable scalars under each top-level layer name, plus ``'total'``."""
    counts = {name: _size(sub) for name, sub in params.items()}
    counts["total"] = sum(counts.values())
    return counts


def summary(params: PyTree) -> str:
    """A table of each layer's parameter arrays with their shapes and counts, and the total."""
    lines = [f"{'layer':<14}{'arrays':<44}{'params':>10}"]
    for name, sub in params.items():
        leaves = jax.tree_util.tree_flatten_with_path(sub)[0]
        arrays = ", ".join(
            f"{jax.tree_util.keystr(path, simple=True, separator='/')}{tuple(leaf.shape)}" for path, leaf in leaves
        )
        lines.append(f"{name:<14}{arrays:<44}{sum(math.prod(leaf.shape) for _, leaf in leaves):>10,}")
    lines.append(f"{'total':<58}{count_params(params)['total']:>10,}")
    return "\n".join(lines)


class LayerInfo(NamedTuple):
    """One layer of a network: its path of parameter keys, per-example input and output shapes, and how many
    trained parameters and non-trained state scalars it holds (its sub-layers' included)."""

    path: tuple[str, ...]
    in_shape: Shape
    out_shape: Shape
    params: int
    state: int


def layer_table(model: Model | Layer, input_shape: Shape | None = None) -> tuple[list[LayerInfo], LayerInfo]:
    """Every layer of ``model`` (outermost first, each followed by its sub-layers) and the whole network's row.

    The layers are those ``serial``/``parallel``/``residual`` hold, at any depth. Shapes come from tracing
    ``init`` abstractly (``jax.eval_shape``): no parameter is allocated, so a 138M-parameter VGG costs nothing.
    """
    layer, shape = (model.layer, model.input_shape) if isinstance(model, Model) else (model, input_shape)
    if shape is None:
        raise ValueError("layer_table needs the input shape of a bare layer")
    records: list[LayerInfo] = []

    def record(path, in_shape, out_shape, params, state):
        records.append(LayerInfo(tuple(path), tuple(in_shape), tuple(out_shape), _size(params), _size(state)))

    box = {}

    def init(key):
        params, state, out = layer.init(key, tuple(shape))
        box["out"] = tuple(out)
        return params, state

    with recording_init(record):
        params, state = jax.eval_shape(init, jax.random.key(0))
    # Records arrive in post-order (children before their parent); sort them into pre-order by sibling positions.
    position: dict[tuple[str, ...], int] = {}
    counts: dict[tuple[str, ...], int] = {}
    for r in records:
        parent = r.path[:-1]
        position[r.path] = counts.get(parent, 0)
        counts[parent] = position[r.path] + 1
    rows = sorted(records, key=lambda r: [position[r.path[:i]] for i in range(1, len(r.path) + 1)])
    return rows, LayerInfo((), tuple(shape), box["out"], _size(params), _size(state))


def model_summary(model: Model | Layer, input_shape: Shape | None = None, depth: int | None = None) -> str:
    """A table of each layer's nested name, output shape (per example) and parameter count, then the total.

    ``depth`` limits how deeply nested layers are listed (1: the top-level layers only); the total is always exact.
    """
    rows, whole = layer_table(model, input_shape)
    rows = [r for r in rows if depth is None or len(r.path) <= depth]
    names = ["/".join(r.path) for r in rows]
    shapes = [str(r.out_shape) for r in rows]
    wn = max([len("layer"), len("total"), *map(len, names)]) + 2
    ws = max([len("output shape"), *map(len, shapes)]) + 2
    lines = [
        f"{model.name}: input {whole.in_shape} -> output {whole.out_shape}",
        f"{'layer':<{wn}}{'output shape':<{ws}}{'params':>12}",
    ]
    lines += [f"{n:<{wn}}{s:<{ws}}{r.params:>12,}" for n, s, r in zip(names, shapes, rows, strict=True)]
    lines.append(f"{'total':<{wn}}{whole.out_shape!s:<{ws}}{whole.params:>12,}")
    if whole.state:
        lines.append(f"(plus {whole.state:,} non-trained state values: batch-norm running statistics and the like)")
    return "\n".join(lines)


def num_params(model: Model) -> int:
    """The number of trained parameters of ``model``, from its abstract init (nothing is allocated)."""
    params, _ = jax.eval_shape(model.init, jax.random.key(0))
    return _size(params)
