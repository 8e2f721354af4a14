"""Hand-designed image features: histograms of oriented gradients (Dalal & Triggs 2005), the kind of fixed feature
extractor LeCun et al. (1998) set against a network that learns its features end to end.

``hog_features`` is a vectorised, jittable JAX version of ``skimage.feature.hog`` (same gradients, hard binning,
cells, blocks and block normalisations, so the same numbers up to float32 rounding; a gradient within float32
rounding of a bin edge may vote into the neighbouring bin) that runs on a whole batch of images at once;
``oriented_gradient_filters`` are the oriented derivative kernels whose responses HOG bins, to show beside a
network's learned first-layer filters.
"""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp
import numpy as np

BLOCK_NORMS = ("L1", "L1-sqrt", "L2", "L2-Hys")
_EPS = 1e-5  # scikit-image's


def _gradients(images: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Central differences [-1, 0, 1] along rows and columns, zero on the border (scikit-image's)."""
    g_row = jnp.zeros_like(images).at[..., 1:-1, :].set(images[..., 2:, :] - images[..., :-2, :])
    g_col = jnp.zeros_like(images).at[..., :, 1:-1].set(images[..., :, 2:] - images[..., :, :-2])
    return g_row, g_col


def _orientation_bins(g_row: jax.Array, g_col: jax.Array, orientations: int) -> jax.Array:
    """The bin of each gradient's unsigned orientation, ``floor(angle / (180 / orientations))`` with the angle in
    [0, 180) degrees from the column axis towards the row axis, found without computing the angle: the gradient is
    folded into the upper half-plane and compared with each bin's lower edge by the sign of a cross product, so that
    gradients exactly on an edge (45 degrees: equal differences) fall on the side scikit-image's float64 puts them."""
    flip = (g_row < 0) | ((g_row == 0) & (g_col < 0))
    g_row, g_col = jnp.where(flip, -g_row, g_row), jnp.where(flip, -g_col, g_col)
    edges = np.pi * np.arange(1, orientations) / orientations
    # each edge's direction scaled so that its larger coordinate is 1: those at 45, 90, 135 degrees become exactly
    # (1, 1), (0, 1), (-1, 1), so equal differences compare exactly
    scale = np.maximum(np.abs(np.cos(edges)), np.abs(np.sin(edges)))
    cos, sin = (jnp.asarray(np.round(f(edges) / scale, 12), g_row.dtype) for f in (np.cos, np.sin))
    above = g_row[..., None] * cos >= g_col[..., None] * sin  # the angle is at least the edge's
    return jnp.sum(above, axis=-1)


def _normalise(blocks: jax.Array, method: str) -> jax.Array:
    """Normalise each block (the last three axes: cell rows, cell columns, orientations)."""
    axes = (-3, -2, -1)
    if method in ("L1", "L1-sqrt"):
        out = blocks / (jnp.sum(jnp.abs(blocks), axes, keepdims=True) + _EPS)
        return jnp.sqrt(out) if method == "L1-sqrt" else out
    out = blocks / jnp.sqrt(jnp.sum(blocks**2, axes, keepdims=True) + _EPS**2)
    if method == "L2-Hys":
        out = jnp.minimum(out, 0.2)
        out = out / jnp.sqrt(jnp.sum(out**2, axes, keepdims=True) + _EPS**2)
    return out


@partial(jax.jit, static_argnames=("orientations", "pixels_per_cell", "cells_per_block", "block_norm", "sqrt"))
def _hog(
    images: jax.Array,
    orientations: int,
    pixels_per_cell: tuple[int, int],
    cells_per_block: tuple[int, int],
    block_norm: str,
    sqrt: bool,
) -> jax.Array:
    if sqrt:
        images = jnp.sqrt(images)
    g_row, g_col = _gradients(jnp.moveaxis(images, -1, 1))  # (n, channels, h, w)
    magnitude = jnp.hypot(g_row, g_col)
    # several channels: each pixel's gradient is that of the channel where it is largest
    pick = jnp.argmax(magnitude, axis=1)[:, None]
    g_row, g_col, magnitude = (jnp.take_along_axis(g, pick, axis=1)[:, 0] for g in (g_row, g_col, magnitude))
    bins = _orientation_bins(g_row, g_col, orientations)
    votes = jax.nn.one_hot(bins, orientations, dtype=magnitude.dtype) * magnitude[..., None]
    (c_row, c_col), (b_row, b_col) = pixels_per_cell, cells_per_block
    n, h, w = magnitude.shape
    rows, cols = h // c_row, w // c_col
    cells = votes[:, : rows * c_row, : cols * c_col].reshape(n, rows, c_row, cols, c_col, orientations)
    histogram = cells.mean(axis=(2, 4))  # (n, cell rows, cell columns, orientations)
    blocks_r, blocks_c = rows - b_row + 1, cols - b_col + 1
    blocks = jnp.stack(
        [
            jnp.stack([histogram[:, i : i + blocks_r, j : j + blocks_c] for j in range(b_col)], axis=3)
            for i in range(b_row)
        ],
        axis=3,
    )  # (n, block rows, block columns, b_row, b_col, orientations)
    return _normalise(blocks, block_norm).reshape(n, -1)


def hog_features(
    images: np.ndarray | jax.Array,
    *,
    orientations: int = 9,
    pixels_per_cell: tuple[int, int] = (8, 8),
    cells_per_block: tuple[int, int] = (3, 3),
    block_norm: str = "L2-Hys",
    sqrt: bool = False,
    batch_size: int = 10000,
) -> np.ndarray:
    """Histogram-of-oriented-gradients descriptors of a batch of images, ``(n, h, w)`` or ``(n, h, w, channels)``,
    as ``(n, features)`` float32: ``skimage.feature.hog(image, ...)`` of each image (its defaults, its
    ``transform_sqrt`` as ``sqrt``, ``feature_vector=True``, several channels as its ``channel_axis=-1``), computed in
    jitted batches of ``batch_size``.

    Per pixel the gradient by central differences; its magnitude votes into one of ``orientations`` unsigned
    orientation bins over [0, 180) degrees; votes are averaged over cells of ``pixels_per_cell``; every block of
    ``cells_per_block`` cells (sliding by one cell) is normalised by ``block_norm`` ('L1', 'L1-sqrt', 'L2' or
    'L2-Hys': L2, clipped at 0.2, L2 again). A 28x28 MNIST digit with 4x4-pixel cells and 2x2-cell blocks gives
    6 x 6 blocks x 4 cells x 9 bins = 1,296 features.
    """
    images = np.asarray(images, np.float32) if not isinstance(images, jax.Array) else images.astype(jnp.float32)
    if images.ndim == 3:
        images = images[..., None]
    if images.ndim != 4:
        raise ValueError(f"images must have shape (n, h, w) or (n, h, w, channels); got {images.shape}")
    if block_norm not in BLOCK_NORMS:
        raise ValueError(f"block_norm must be one of {', '.join(BLOCK_NORMS)}; got {block_norm!r}")
    if orientations < 1:
        raise ValueError(f"orientations must be at least 1; got {orientations}")
    cell, block = tuple(int(v) for v in pixels_per_cell), tuple(int(v) for v in cells_per_block)
    if len(cell) != 2 or len(block) != 2 or min(cell + block) < 1:
        raise ValueError(f"pixels_per_cell and cells_per_block must be two positive ints; got {cell} and {block}")
    h, w = images.shape[1:3]
    if h // cell[0] < block[0] or w // cell[1] < block[1]:
        raise ValueError(
            f"images of {h}x{w} are too small for cells of {cell} pixels and blocks of {block} cells: they need at "
            f"least {block[0] * cell[0]}x{block[1] * cell[1]}"
        )
    run = partial(
        _hog,
        orientations=orientations,
        pixels_per_cell=cell,
        cells_per_block=block,
        block_norm=block_norm,
        sqrt=sqrt,
    )
    parts = [np.asarray(run(jnp.asarray(images[i : i + batch_size]))) for i in range(0, len(images), batch_size)]
    return np.concatenate(parts) if parts else np.zeros((0, 0), np.float32)


def oriented_gradient_filters(orientations: int = 9, size: int = 5, sigma: float | None = None) -> np.ndarray:
    """The hand-designed filters behind HOG, ``(size, size, orientations)``: for each orientation bin's centre angle
    (``180 (k + 1/2) / orientations`` degrees, measured as scikit-image's, from the column axis towards the row axis),
    the derivative of a Gaussian (``sigma``: ``size / 4``) along that direction, a smoothed, steered version of the
    [-1, 0, 1] difference HOG takes (Sobel's kernels are its 3x3 cases at 0 and 90 degrees), scaled to unit L2 norm.
    The gradient at a pixel points along the bin's angle exactly when this filter's response is largest."""
    if orientations < 1 or size < 2:
        raise ValueError(f"orientations must be >= 1 and size >= 2; got {orientations} and {size}")
    sigma = size / 4 if sigma is None else sigma
    r = np.arange(size) - (size - 1) / 2
    rows, cols = np.meshgrid(r, r, indexing="ij")
    gauss = np.exp(-(rows**2 + cols**2) / (2 * sigma**2))
    angles = np.pi * (np.arange(orientations) + 0.5) / orientations
    kernels = (np.cos(angles) * cols[..., None] + np.sin(angles) * rows[..., None]) * gauss[..., None]
    return (kernels / np.linalg.norm(kernels.reshape(-1, orientations), axis=0)).astype(np.float32)
