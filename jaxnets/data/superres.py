"""Low/high-resolution image pairs for super-resolution, made as the SRCNN and ESPCN papers made theirs: the
high-resolution image cropped to a multiple of the scale, shrunk by bicubic interpolation (``nn.bicubic_resize``:
antialiased, as MATLAB's ``imresize``), and for SRCNN's input enlarged back by bicubic interpolation.

Images are float arrays ``(n, height, width, channels)`` in [0, 1]; every result is clipped to [0, 1] (as an 8-bit
image would be). ``photographs`` gives scikit-image's sample photographs (an optional extra) as such arrays.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jaxnets.nn import bicubic_resize

SUPERRES_SCALES = (2, 3, 4)
# scikit-image's bundled sample photographs (skimage.data, no download): train on the first ones, test on the last.
TRAIN_PHOTOGRAPHS = ("astronaut", "coffee", "rocket", "coins", "moon", "brick", "grass", "gravel")
TEST_PHOTOGRAPHS = ("camera", "chelsea")


class SuperResolutionPairs(NamedTuple):
    """``low``: ``(n, h, w, c)``; ``high``: ``(n, h * scale, w * scale, c)``; ``bicubic``: ``low`` enlarged back to
    the shape of ``high`` by bicubic interpolation (SRCNN's input and the baseline every method must beat)."""

    low: np.ndarray
    high: np.ndarray
    bicubic: np.ndarray
    scale: int


def superres_pairs(images: np.ndarray, scale: int) -> SuperResolutionPairs:
    """Pairs for upscaling by ``scale`` from ``(n, h, w, c)`` images in [0, 1]: each is cropped (bottom, right) to
    a multiple of ``scale``, shrunk by bicubic interpolation, and enlarged back for the ``bicubic`` input."""
    if scale not in SUPERRES_SCALES:
        raise ValueError(f"superres_pairs: scale must be one of {SUPERRES_SCALES}; got {scale!r}")
    images = np.asarray(images)
    if images.ndim != 4 or min(images.shape[1:3]) < scale:
        raise ValueError(
            f"superres_pairs: images must have shape (n, height, width, channels) with sides >= scale = {scale}; "
            f"got {images.shape}"
        )
    h, w = (images.shape[1] // scale) * scale, (images.shape[2] // scale) * scale
    high = jnp.asarray(images[:, :h, :w], jnp.float32)
    resize = jax.jit(bicubic_resize, static_argnums=(1, 2))
    low = resize(high, h // scale, w // scale)
    bicubic = resize(low, h, w)
    return SuperResolutionPairs(np.asarray(low), np.asarray(high), np.asarray(bicubic), scale)


def luminance(rgb: np.ndarray) -> np.ndarray:
    """The Y channel (ITU-R BT.601, as the SRCNN paper's YCbCr) of RGB images in [0, 1], keeping a channel axis:
    ``(..., 3) -> (..., 1)``, in [16/255, 235/255]."""
    rgb = np.asarray(rgb, np.float32)
    y = (16.0 + 65.481 * rgb[..., 0] + 128.553 * rgb[..., 1] + 24.966 * rgb[..., 2]) / 255.0
    return y[..., None]


def photographs(names: tuple[str, ...]) -> list[np.ndarray]:
    """scikit-image's sample photographs ``names`` as luminance images ``(h, w, 1)`` in [0, 1] (grey ones as they
    are); a one-line ``ImportError`` naming the extra to install if scikit-image is absent."""
    try:
        from skimage import data as samples
    except ImportError:
        raise ImportError("photographs need scikit-image: pip install 'jaxnets[photos]' (or scikit-image)") from None
    out = []
    for name in names:
        image = np.asarray(getattr(samples, name)(), np.float32) / 255.0
        out.append(luminance(image[..., :3]) if image.ndim == 3 else image[..., None])
    return out


def patches(images: list[np.ndarray], size: int, stride: int) -> np.ndarray:
    """Every ``size x size`` sub-image at ``stride`` of each ``(h, w, c)`` image, stacked: ``(n, size, size, c)``
    (SRCNN trained on 33x33 sub-images at stride 14)."""
    if size < 1 or stride < 1:
        raise ValueError(f"patches: size and stride must be >= 1; got size={size}, stride={stride}")
    out = [
        image[i : i + size, j : j + size]
        for image in images
        for i in range(0, image.shape[0] - size + 1, stride)
        for j in range(0, image.shape[1] - size + 1, stride)
    ]
    if not out:
        raise ValueError(f"patches: every image is smaller than size={size}")
    return np.stack(out)
