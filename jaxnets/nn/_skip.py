"""Crop-and-concatenate skips (U-Net, Ronneberger et al. 2015): a feature map of the contracting path, centre-cropped
to the size of the expanding path's map (smaller after unpadded convolutions), joined to it along the channels."""

from __future__ import annotations

from collections.abc import Sequence

import jax
import jax.numpy as jnp

from jaxnets.nn._core import Layer, Shape, _combine, named, stateless

Array = jax.Array


def _check_fits(skip: Shape, target: Shape) -> None:
    """``ValueError`` unless the per-example map ``skip`` is at least as large as ``target`` on every spatial axis."""
    if len(skip) != len(target) or any(s < t for s, t in zip(skip[:-1], target[:-1], strict=True)):
        raise ValueError(
            f"crop_concat: the skip must be at least as large as the other map on every spatial axis; got skip "
            f"shape {tuple(skip)} and {tuple(target)}"
        )


def center_crop(x: Array, size: Sequence[int]) -> Array:
    """The centred window of ``x`` (batch, *spatial[, channels]) of spatial ``size`` (axes 1 to ``len(size)``;
    ``(big - small) // 2`` dropped before each window)."""
    have = tuple(x.shape[1 : 1 + len(size)])
    if len(have) != len(size) or any(h < s for h, s in zip(have, size, strict=True)):
        raise ValueError(f"center_crop: cannot cut a window of size {tuple(size)} out of spatial shape {have}")
    return x[(slice(None), *(slice((h - s) // 2, (h - s) // 2 + s) for h, s in zip(have, size, strict=True)))]


def crop_concat(skip: Array, x: Array) -> Array:
    """``skip`` (batch, *spatial, c1) centre-cropped to the spatial size of ``x`` (batch, *spatial', c2), then
    concatenated with it: (batch, *spatial', c1 + c2), the skip's channels first."""
    _check_fits(skip.shape[1:], x.shape[1:])
    return jnp.concatenate([center_crop(skip, x.shape[1:-1]), x], axis=-1)


def skip_concat(body: Layer, shortcut: Layer | None = None, name: str = "skip_concat") -> Layer:
    """``crop_concat(shortcut(x), body(x))`` (identity shortcut by default): a U-Net level is
    ``serial(convs, skip_concat(serial(pool, deeper levels, up-convolution)), convs)``."""
    shortcut = shortcut if shortcut is not None else stateless("identity", lambda x: x)

    def merge(shapes: list[Shape]) -> Shape:
        body_shape, skip_shape = shapes
        _check_fits(skip_shape, body_shape)
        return (*body_shape[:-1], skip_shape[-1] + body_shape[-1])

    return _combine(
        [named("body", body), named("shortcut", shortcut)], name, merge=(merge, lambda ys: crop_concat(ys[1], ys[0]))
    )
