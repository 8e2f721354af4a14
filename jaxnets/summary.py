"""Parameter counts per layer and in total."""

from __future__ import annotations

import math

import jax

from jaxnets.nn.core import PyTree


def count_params(params: PyTree) -> dict[str, int]:
    """Number of trainable scalars under each top-level layer name, plus ``'total'``."""
    counts = {name: sum(math.prod(leaf.shape) for leaf in jax.tree_util.tree_leaves(sub))
              for name, sub in params.items()}
    counts["total"] = sum(counts.values())
    return counts


def summary(params: PyTree) -> str:
    """A table of each layer's parameter arrays with their shapes and counts, and the total."""
    lines = [f"{'layer':<14}{'arrays':<44}{'params':>10}"]
    for name, sub in params.items():
        leaves = jax.tree_util.tree_flatten_with_path(sub)[0]
        arrays = ", ".join(f"{jax.tree_util.keystr(path, simple=True, separator='/')}{tuple(leaf.shape)}"
                           for path, leaf in leaves)
        lines.append(f"{name:<14}{arrays:<44}{sum(math.prod(leaf.shape) for _, leaf in leaves):>10,}")
    lines.append(f"{'total':<58}{count_params(params)['total']:>10,}")
    return "\n".join(lines)
