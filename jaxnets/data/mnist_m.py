"""MNIST-M (Ganin & Lempitsky 2015; Ganin et al. 2016, section 5.2.1), generated offline and seeded.

Ganin et al. blend each MNIST digit with a random 28x28 crop of a colour photograph from BSDS500 by absolute
difference: ``|crop - digit|`` per colour channel, so the stroke inverts the crop's colours. BSDS500 cannot be had
offline here, so the crops come from one of two sources:

- ``"photos"``: the seven colour photographs bundled with scikit-image (astronaut, cat, coffee, Hubble deep field,
  immunohistochemistry, retina, rocket; ``pip install scikit-image``);
- ``"textures"``: procedurally generated coloured textures (smooth random colour fields with random stripes and
  blobs), needing nothing.
"""

from __future__ import annotations

import numpy as np

SOURCES = ("photos", "textures")
PHOTOS = ("astronaut", "chelsea", "coffee", "hubble_deep_field", "immunohistochemistry", "retina", "rocket")


def _photos() -> list[np.ndarray]:
    try:
        import skimage.data
    except ImportError:
        raise ImportError(
            "make_mnist_m(source='photos') needs scikit-image (pip install scikit-image); or pass source='textures'"
        ) from None
    return [np.asarray(getattr(skimage.data, name)(), np.uint8)[..., :3] for name in PHOTOS]


def _textures(rng: np.random.Generator, count: int = 16, size: int = 256) -> list[np.ndarray]:
    """``count`` coloured (size, size, 3) uint8 textures: a bilinearly upsampled random colour field plus random
    sinusoidal stripes and Gaussian blobs, each with its own colours."""
    yy, xx = np.mgrid[0:size, 0:size] / size
    out = []
    for _ in range(count):
        coarse = rng.uniform(0, 1, (5, 5, 3))
        grid = np.linspace(0, 4, size)
        i0 = np.minimum(grid.astype(int), 3)
        t = (grid - i0)[:, None]
        rows = coarse[i0] * (1 - t[..., None]) + coarse[i0 + 1] * t[..., None]  # (size, 5, 3)
        img = rows[:, i0] * (1 - t.T[..., None]) + rows[:, i0 + 1] * t.T[..., None]
        angle, freq = rng.uniform(0, np.pi), rng.uniform(4, 40)
        stripes = 0.5 + 0.5 * np.sin(2 * np.pi * freq * (np.cos(angle) * xx + np.sin(angle) * yy))
        img = img * 0.6 + 0.4 * stripes[..., None] * rng.uniform(0, 1, 3)
        for _ in range(rng.integers(3, 12)):
            cy, cx, r = rng.uniform(0, 1), rng.uniform(0, 1), rng.uniform(0.02, 0.15)
            blob = np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * r * r))[..., None]
            img = img * (1 - blob) + blob * rng.uniform(0, 1, 3)
        out.append(np.clip(img * 255, 0, 255).astype(np.uint8))
    return out


def make_mnist_m(digits: np.ndarray, seed: int = 0, source: str = "photos") -> np.ndarray:
    """MNIST-M images ``(n, 28, 28, 3)`` float32 in [0, 1] from MNIST ``digits`` ((n, 28, 28) or (n, 28, 28, 1),
    uint8 0..255 or floats in [0, 1]): ``|crop - digit|`` with a crop drawn uniformly (image, then position) from
    ``source`` ('photos' or 'textures'). The same ``digits``, ``seed`` and ``source`` give the same images."""
    if source not in SOURCES:
        raise ValueError(f"unknown MNIST-M background source {source!r}; choose one of {SOURCES}")
    x = np.asarray(digits)
    if x.ndim == 4 and x.shape[-1] == 1:
        x = x[..., 0]
    if x.ndim != 3:
        raise ValueError(f"digits must have shape (n, height, width) or (n, height, width, 1); got {np.shape(digits)}")
    x = x.astype(np.float32) / 255.0 if np.issubdtype(x.dtype, np.integer) else x.astype(np.float32)
    if x.size and (x.min() < 0 or x.max() > 1):
        raise ValueError(f"float digits must lie in [0, 1]; got values in [{x.min()}, {x.max()}]")
    rng = np.random.default_rng(seed)
    backgrounds = _photos() if source == "photos" else _textures(np.random.default_rng([seed, 1]))
    n, h, w = x.shape
    which = rng.integers(0, len(backgrounds), n)
    out = np.empty((n, h, w, 3), np.float32)
    for b, bg in enumerate(backgrounds):
        idx = np.nonzero(which == b)[0]
        top = rng.integers(0, bg.shape[0] - h + 1, len(idx))
        left = rng.integers(0, bg.shape[1] - w + 1, len(idx))
        rows = top[:, None] + np.arange(h)  # (k, h)
        cols = left[:, None] + np.arange(w)  # (k, w)
        crops = bg[rows[:, :, None], cols[:, None, :]].astype(np.float32) / 255.0  # (k, h, w, 3)
        out[idx] = np.abs(crops - x[idx][..., None])
    return out
