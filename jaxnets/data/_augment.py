"""Random image augmentations as pure JAX functions ``augment(key, images) -> images`` of a batch ``(batch, height,
width, channels)``, cheap enough to run inside the compiled training step: integer shifts, affine maps (rotation,
scale, squeeze, shear, translation) and Simard et al. 2003's elastic distortions, each resampled bilinearly with
the edge pixels extended (the background, whatever the normalisation). The same key gives the same batch."""

from __future__ import annotations

import functools
import math
from collections.abc import Callable

import jax
import jax.numpy as jnp

from jaxnets._names import unknown

Augment = Callable[[jax.Array, jax.Array], jax.Array]
AUGMENTATIONS = ("none", "shift", "affine", "elastic")


def _check_images(images: jax.Array) -> None:
    if images.ndim != 4:
        raise ValueError(f"augment: needs images (batch, height, width, channels); got shape {tuple(images.shape)}")


def _uniform(key: jax.Array, shape: tuple[int, ...], bound: float | jax.Array = 1.0) -> jax.Array:
    """Uniform draws in ``[-bound, bound]``, drawn flat and reshaped (jaxlib 0.10 compiles a threefry draw of
    several axes ~10x slower than a flat one)."""
    return jax.random.uniform(key, (math.prod(shape),), minval=-1, maxval=1).reshape(shape) * bound


def resample(images: jax.Array, rows: jax.Array, cols: jax.Array) -> jax.Array:
    """``out[b, i, j, c] = images[b, rows[b, i, j], cols[b, i, j], c]``, bilinear between pixels; coordinates
    outside the image take the nearest edge pixel. ``rows``, ``cols``: ``(batch, height, width)``."""
    _check_images(images)
    one = functools.partial(jax.scipy.ndimage.map_coordinates, order=1, mode="nearest")
    per_channel = jax.vmap(lambda img, r, c: one(img, (r, c)), in_axes=(2, None, None), out_axes=2)
    return jax.vmap(per_channel)(images, rows, cols).astype(images.dtype)


def affine(images: jax.Array, matrices: jax.Array, translations: jax.Array) -> jax.Array:
    """Each image mapped by ``p -> A p + t`` about its centre (``matrices`` ``(batch, 2, 2)`` acting on (row,
    column) offsets, ``translations`` ``(batch, 2)`` in pixels): output pixel ``q`` reads the input at
    ``A^-1 (q - t)``. The identity matrix and zero translation give the images back."""
    _check_images(images)
    h, w = images.shape[1:3]
    centre = jnp.array([(h - 1) / 2, (w - 1) / 2])
    grid = jnp.stack(jnp.meshgrid(jnp.arange(h), jnp.arange(w), indexing="ij"), -1) - centre  # (h, w, 2)
    (a, b), (c, d) = matrices[:, 0].T, matrices[:, 1].T  # (the 2x2 inverse in closed form: no LAPACK call)
    inverse = jnp.stack([jnp.stack([d, -b], -1), jnp.stack([-c, a], -1)], -2) / (a * d - b * c)[:, None, None]
    source = jnp.einsum("bij,bhwj->bhwi", inverse, grid[None] - translations[:, None, None, :]) + centre
    return resample(images, source[..., 0], source[..., 1])


def random_shift(key: jax.Array, images: jax.Array, max_shift: int = 2) -> jax.Array:
    """Each image translated by a whole number of pixels, uniform in ``[-max_shift, max_shift]`` per axis."""
    _check_images(images)
    shifts = jnp.clip(jnp.round(_uniform(key, (images.shape[0], 2), max_shift + 0.5)), -max_shift, max_shift)
    # (as affine(images, I, shifts) computes it, edges extended, but a slice of the padded image: no interpolation)
    padded = jnp.pad(images, ((0, 0), (max_shift, max_shift), (max_shift, max_shift), (0, 0)), mode="edge")
    starts = (max_shift - shifts).astype(jnp.int32)

    def one(image: jax.Array, start: jax.Array) -> jax.Array:
        return jax.lax.dynamic_slice(image, (start[0], start[1], 0), images.shape[1:])

    return jax.vmap(one)(padded, starts)


def random_affine(
    key: jax.Array,
    images: jax.Array,
    rotation: float = 10.0,
    scale: float = 0.1,
    squeeze: float = 0.1,
    shear: float = 0.15,
    translation: float = 2.0,
) -> jax.Array:
    """Each image under a random affine map, every parameter uniform in ``[-v, v]``: a rotation of ``rotation``
    degrees, a scaling by ``1 + scale``, a squeeze (rows times ``1 + squeeze``, columns divided by it: LeCun et
    al. 1998's distortions), a horizontal shear and a translation of ``translation`` pixels per axis."""
    _check_images(images)
    b = images.shape[0]
    k = jax.random.split(key, 5)
    angle = _uniform(k[0], (b,), jnp.deg2rad(rotation))
    zoom = 1 + _uniform(k[1], (b,), scale)
    stretch = 1 + _uniform(k[2], (b,), squeeze)
    slant = _uniform(k[3], (b,), shear)
    cos, sin = jnp.cos(angle), jnp.sin(angle)
    rotate = jnp.stack([jnp.stack([cos, -sin], -1), jnp.stack([sin, cos], -1)], -2)
    shape = jnp.stack(
        [jnp.stack([zoom * stretch, jnp.zeros(b)], -1), jnp.stack([zoom * slant, zoom / stretch], -1)], -2
    )  # (rows scaled and stretched; columns scaled, squeezed and sheared along the rows)
    shifts = _uniform(k[4], (b, 2), translation)
    return affine(images, rotate @ shape, shifts)


def _gaussian_matrix(n: int, sigma: float) -> jax.Array:
    """The ``(n, n)`` matrix of a 'same' convolution with a normalised Gaussian of ``sigma`` pixels truncated at 4
    sigma, zero outside (scipy.ndimage.gaussian_filter's mode='constant')."""
    radius = int(4 * sigma + 0.5)
    taps = jnp.exp(-0.5 * (jnp.arange(-radius, radius + 1) / sigma) ** 2)
    taps = taps / taps.sum()
    offset = jnp.arange(n)[:, None] - jnp.arange(n)[None, :]
    return jnp.where(jnp.abs(offset) <= radius, taps[jnp.clip(offset + radius, 0, 2 * radius)], 0.0)


def elastic_distortion(key: jax.Array, images: jax.Array, alpha: float = 34.0, sigma: float = 4.0) -> jax.Array:
    """Simard, Steinkraus & Platt 2003: a displacement field of independent uniform(-1, 1) values per pixel and
    axis, smoothed by a Gaussian of ``sigma`` pixels and scaled by ``alpha`` (their 28x28 MNIST values: sigma 4,
    alpha 34); each image resampled along it. ``alpha=0`` gives the images back."""
    _check_images(images)
    b, h, w = images.shape[:3]
    field = _uniform(key, (b, 2, h, w))
    smooth = jnp.einsum("ij,bdjk,lk->bdil", _gaussian_matrix(h, sigma), field, _gaussian_matrix(w, sigma))
    rows, cols = jnp.meshgrid(jnp.arange(h), jnp.arange(w), indexing="ij")
    return resample(images, rows + alpha * smooth[:, 0], cols + alpha * smooth[:, 1])


def augmentation(name: str, strength: float = 1.0) -> Augment | None:
    """The augmentation ``name`` (one of ``AUGMENTATIONS``; 'none' gives None) with its magnitudes scaled by
    ``strength``: shifts of up to ``round(2 * strength)`` pixels; affine maps of up to ``10 * strength`` degrees,
    ``10 * strength`` % scale and squeeze, shear ``0.15 * strength`` and ``2 * strength`` pixels; elastic fields
    of sigma 4 and alpha ``34 * strength``."""
    if name not in AUGMENTATIONS:
        raise ValueError(unknown("augment", name, AUGMENTATIONS))
    if not (isinstance(strength, int | float) and math.isfinite(strength) and strength >= 0):
        raise ValueError(f"augment_strength must be a finite number >= 0; got {strength!r}")
    s = float(strength)
    return {
        "none": None,
        "shift": functools.partial(random_shift, max_shift=round(2 * s)),
        "affine": functools.partial(
            random_affine, rotation=10 * s, scale=0.1 * s, squeeze=0.1 * s, shear=0.15 * s, translation=2 * s
        ),
        "elastic": functools.partial(elastic_distortion, alpha=34 * s, sigma=4.0),
    }[name]
