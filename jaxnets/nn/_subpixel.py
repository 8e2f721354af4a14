"""Sub-pixel shuffle (depth-to-space, Shi et al. 2016), its inverse (space-to-depth), channels-last, and the bicubic
resize that super-resolution starts from and is measured against.

``pixel_shuffle(r)`` maps ``(batch, h, w, r * r * c)`` to ``(batch, h * r, w * r, c)``: output pixel ``(i * r + a,
j * r + b)``, channel ``k`` is input pixel ``(i, j)``, channel ``(a * r + b) * c + k`` (TensorFlow's
``depth_to_space`` order; PyTorch's channels-first ``PixelShuffle`` takes channel ``k * r * r + a * r + b``).
``pixel_unshuffle(r)`` is its inverse. Both only move values, so each one's gradient is the other.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from jaxnets.nn._core import Layer, Shape, stateless

Array = jax.Array


def _check_factor(factor: int, name: str) -> None:
    if not isinstance(factor, int) or factor < 1:
        raise ValueError(f"{name}: factor must be an int >= 1; got {factor!r}")


def pixel_shuffle(factor: int, name: str = "pixel_shuffle") -> Layer:
    """Depth-to-space: ``(h, w, factor**2 * c) -> (h * factor, w * factor, c)`` per example (ESPCN's last layer)."""
    _check_factor(factor, name)
    r = factor

    def out_shape(shape: Shape) -> Shape:
        if len(shape) != 3 or shape[-1] % (r * r):
            raise ValueError(
                f"{name}: expects per-example input (height, width, channels) with channels a multiple of "
                f"factor**2 = {r * r}; got shape {shape}"
            )
        h, w, c = shape
        return (h * r, w * r, c // (r * r))

    def fn(x: Array) -> Array:
        n, h, w, c = x.shape
        y = x.reshape(n, h, w, r, r, c // (r * r)).transpose(0, 1, 3, 2, 4, 5)
        return y.reshape(n, h * r, w * r, c // (r * r))

    return stateless(name, fn, out_shape)


def pixel_unshuffle(factor: int, name: str = "pixel_unshuffle") -> Layer:
    """Space-to-depth, the inverse of ``pixel_shuffle``: ``(h * factor, w * factor, c) -> (h, w, factor**2 * c)``."""
    _check_factor(factor, name)
    r = factor

    def out_shape(shape: Shape) -> Shape:
        if len(shape) != 3 or shape[0] % r or shape[1] % r:
            raise ValueError(
                f"{name}: expects per-example input (height, width, channels) with height and width multiples of "
                f"factor = {r}; got shape {shape}"
            )
        h, w, c = shape
        return (h // r, w // r, c * r * r)

    def fn(x: Array) -> Array:
        n, h, w, c = x.shape
        y = x.reshape(n, h // r, r, w // r, r, c).transpose(0, 1, 3, 2, 4, 5)
        return y.reshape(n, h // r, w // r, r * r * c)

    return stateless(name, fn, out_shape)


def bicubic_resize(images: Array, height: int, width: int) -> Array:
    """Bicubic resize of ``(n, h, w, c)`` images in [0, 1] to ``(n, height, width, c)`` (Keys' cubic, a = -0.5,
    antialiased when shrinking as MATLAB's ``imresize``; ``jax.image.resize``), clipped to [0, 1] as an 8-bit image
    would be."""
    images = jnp.asarray(images, jnp.float32)
    out = jax.image.resize(images, (images.shape[0], height, width, images.shape[-1]), "bicubic", antialias=True)
    return jnp.clip(out, 0.0, 1.0)
