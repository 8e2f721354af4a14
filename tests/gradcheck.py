"""One reusable finite-difference gradient checker, run in float64.

``check_grad(fn, args)`` compares ``jax.grad(fn)(args)`` with central differences

    (fn(args + eps * e) - fn(args - eps * e)) / (2 eps)

along coordinate directions ``e`` (every coordinate of small leaves, a random sample of large ones, at least one per
leaf) and along a few random dense directions. It refuses to run unless every leaf and the value are float64: enable
64-bit only locally, with ``with jax.enable_x64(True):`` around the whole check (``x64()`` below does that).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree


@contextlib.contextmanager
def x64() -> Iterator[None]:
    """64-bit floats inside the block only (the rest of the session stays float32)."""
    with jax.enable_x64(True):
        yield


def _leaf_names(tree) -> list[str]:
    return [jax.tree_util.keystr(path) for path, _ in jax.tree_util.tree_flatten_with_path(tree)[0]]


def check_grad(
    fn: Callable,
    args,
    *,
    eps: float = 1e-6,
    rtol: float = 1e-5,
    atol: float = 1e-7,
    max_coords_per_leaf: int = 64,
    n_directions: int = 4,
    seed: int = 0,
    batch_size: int | None = None,
    require_nonzero: bool = True,
) -> int:
    """Assert that ``jax.grad(fn)(args)`` matches central finite differences; returns the number of checks made.

    ``fn`` maps the pytree ``args`` to a scalar. ``atol`` is scaled by ``max(1, |fn(args)|)`` to allow for the
    round-off of differencing large values. With ``require_nonzero`` every leaf's gradient must have a non-zero entry,
    so that a check cannot pass vacuously on a function that ignores its input. ``batch_size`` bounds how many
    perturbed evaluations run at once (``None``: all, fastest for small functions).
    """
    leaves = jax.tree_util.tree_leaves(args)
    names = _leaf_names(args)
    assert leaves, "nothing to differentiate"
    for name, leaf in zip(names, leaves, strict=True):
        assert leaf.dtype == jnp.float64, f"gradcheck must run in float64; leaf {name} is {leaf.dtype}"
    theta0, unravel = ravel_pytree(args)
    assert theta0.dtype == jnp.float64, f"flattened arguments are {theta0.dtype}, not float64"

    # Coordinates to probe: all of a small leaf, a random sample (always including the first and last) of a big one.
    rng = np.random.default_rng(seed)
    coords, owner, offsets, offset = [], [], [], 0
    for li, leaf in enumerate(leaves):
        n = leaf.size
        if n <= max_coords_per_leaf:
            idx = np.arange(n)
        else:
            idx = np.unique(np.concatenate([[0, n - 1], rng.choice(n, max_coords_per_leaf - 2, replace=False)]))
        coords.append(offset + idx)
        owner += [li] * len(idx)
        offsets.append((offset, offset + n))
        offset += n
    coords, owner = np.concatenate(coords), np.asarray(owner)
    dirs = rng.standard_normal((n_directions, theta0.size))

    def f_flat(th):
        return fn(unravel(th))

    # Small problems perturb along dense rows (one-hot coordinates and the random directions stacked), which compiles
    # one vmapped copy of fn instead of two; big ones index the coordinate to perturb, so that no (k, n) matrix is made.
    dense = (len(coords) + n_directions) * theta0.size <= 2_000_000

    @jax.jit
    def evaluate(coords, dirs):
        """Value, gradient and all central differences in one compiled function (compiling dominates the cost)."""
        value, grad = jax.value_and_grad(f_flat)(theta0)
        if dense:
            rows = jnp.concatenate([jax.nn.one_hot(coords, theta0.size, dtype=theta0.dtype), dirs])
            fd_all = jax.lax.map(
                lambda v: (f_flat(theta0 + eps * v) - f_flat(theta0 - eps * v)) / (2 * eps), rows, batch_size=batch_size
            )
            return value, grad, fd_all[: len(coords)], fd_all[len(coords) :]
        fd = jax.lax.map(
            lambda i: (f_flat(theta0.at[i].add(eps)) - f_flat(theta0.at[i].add(-eps))) / (2 * eps),
            coords,
            batch_size=batch_size,
        )
        fd_dir = jax.lax.map(
            lambda v: (f_flat(theta0 + eps * v) - f_flat(theta0 - eps * v)) / (2 * eps), dirs, batch_size=batch_size
        )
        return value, grad, fd, fd_dir

    value, grad, fd, fd_dir = evaluate(jnp.asarray(coords), jnp.asarray(dirs))
    assert value.dtype == jnp.float64 and value.shape == (), f"fn must return a float64 scalar; got {value.dtype}"
    assert grad.dtype == jnp.float64 and fd.dtype == jnp.float64
    value, grad, fd, fd_dir = float(value), np.asarray(grad), np.asarray(fd), np.asarray(fd_dir)
    if require_nonzero:
        for name, (lo, hi) in zip(names, offsets, strict=True):
            assert np.any(grad[lo:hi] != 0), f"gradient of {name} is identically zero"

    ad = grad[coords]
    tol = atol * max(1.0, abs(value)) + rtol * np.abs(ad)
    bad = np.abs(fd - ad) > tol
    if bad.any():
        k = int(np.argmax(np.abs(fd - ad) - tol))
        raise AssertionError(
            f"{int(bad.sum())}/{len(coords)} coordinate derivatives disagree; worst in {names[owner[k]]} "
            f"(flat index {coords[k]}): jax.grad {ad[k]:.10g} vs finite difference {fd[k]:.10g}"
        )

    # Dense random directions: the directional derivative g . v against its central difference.
    ad_dir = dirs @ grad
    tol_dir = atol * max(1.0, abs(value)) * np.sqrt(theta0.size) + rtol * np.abs(ad_dir)
    if np.any(np.abs(fd_dir - ad_dir) > tol_dir):
        raise AssertionError(f"directional derivatives disagree: jax.grad {ad_dir} vs finite differences {fd_dir}")
    return len(coords) + n_directions
