"""Convolution computed through the discrete Fourier transform (the convolution theorem).

A stride-1 cross-correlation of a padded input ``xp`` (spatial size ``P``) with a window ``k`` keeps only the
``P - k + 1`` outputs whose windows fit inside ``xp``; a circular correlation of length ``P`` gives exactly those
without wrapping around, so ``y = irfft(rfft(xp) * conj(rfft(w, P)))[:P - k + 1]``, the channels contracted in the
frequency domain. Its cost is ``O(P log P)`` per channel pair instead of ``O(P k)``: a gain for large kernels only.
Gradients are autodiff through the transforms (the adjoint of an FFT is an FFT).
"""

from __future__ import annotations

import string

import jax
import jax.numpy as jnp
from jax import lax

from jaxnets.nn._conv import Padding, padding_pairs

Array = jax.Array


def conv_fft(x: Array, w: Array, padding: Padding = "VALID") -> Array:
    """Channels-last N-D convolution (cross-correlation, as ``conv``) of ``x: (batch, *spatial, in_channels)`` with
    ``w: (*window, in_channels, features)``, stride 1, computed with real FFTs over the spatial axes; equal to
    ``lax.conv_general_dilated`` up to float rounding. ``padding``: 'SAME', 'VALID', an int or per-axis values."""
    nd = x.ndim - 2
    if nd < 1 or w.ndim != nd + 2 or w.shape[-2] != x.shape[-1]:
        raise ValueError(
            f"conv_fft: w must have shape (*{nd} window, in_channels={x.shape[-1]}, features) for x of shape "
            f"{tuple(x.shape)} (batch, *spatial, channels); got {tuple(w.shape)}"
        )
    window = w.shape[:nd]
    pads = padding_pairs(padding, window, (1,) * nd, x.shape[1:-1])
    xp = lax.pad(x, jnp.zeros((), x.dtype), [(0, 0, 0), *((lo, hi, 0) for lo, hi in pads), (0, 0, 0)])
    size = xp.shape[1:-1]
    if any(k > n for k, n in zip(window, size, strict=True)):
        raise ValueError(f"conv_fft: window {tuple(window)} is larger than the padded input {tuple(size)}")
    fx = jnp.fft.rfftn(xp, s=size, axes=tuple(range(1, nd + 1)))
    fw = jnp.fft.rfftn(w, s=size, axes=tuple(range(nd)))
    sp = string.ascii_uppercase[:nd]
    fy = jnp.einsum(f"n{sp}c,{sp}cf->n{sp}f", fx, jnp.conj(fw))
    y = jnp.fft.irfftn(fy, s=size, axes=tuple(range(1, nd + 1)))
    out = tuple(slice(0, n - k + 1) for n, k in zip(size, window, strict=True))
    return y[(slice(None), *out, slice(None))].astype(jnp.result_type(x, w))
