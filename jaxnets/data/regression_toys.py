"""Seeded 1-D regression problems for densities and uncertainty: Bishop's inverse problem, a sine with a gap."""

from __future__ import annotations

import numpy as np


def bishop_inverse(n: int = 1000, noise: float = 0.1, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Bishop's (1994) inverse problem: y ~ U(0, 1), x = y + 0.3 sin(2 pi y) + U(-noise, noise); returns
    ``(x, y)`` as float32 arrays of shape (n, 1), to predict y from x. The forward map is a function; its inverse
    is multi-valued for x in about (0.35, 0.65), where a least-squares fit averages the branches."""
    if n < 1 or noise < 0:
        raise ValueError(f"need n >= 1 and noise >= 0; got n={n}, noise={noise}")
    rng = np.random.default_rng(seed)
    y = rng.uniform(0.0, 1.0, n)
    x = y + 0.3 * np.sin(2 * np.pi * y) + rng.uniform(-noise, noise, n)
    return x[:, None].astype(np.float32), y[:, None].astype(np.float32)


def gap_sine(
    n: int = 400, gap: tuple[float, float] = (-1.0, 1.0), low: float = -4.0, high: float = 4.0, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """y = sin(x) + eps with heteroscedastic noise sd 0.05 + 0.1 |x| / 4, x uniform on [low, high] minus ``gap``
    (no data there: epistemic uncertainty should grow inside it). Returns float32 ``(x, y)`` of shape (n, 1)."""
    a, b = gap
    if not low <= a < b <= high:
        raise ValueError(f"the gap ({a}, {b}) must lie inside [low, high] = [{low}, {high}]")
    rng = np.random.default_rng(seed)
    u = rng.uniform(0.0, (a - low) + (high - b), n)
    x = np.where(u < a - low, low + u, b + u - (a - low))
    y = np.sin(x) + (0.05 + 0.1 * np.abs(x) / 4) * rng.standard_normal(n)
    return x[:, None].astype(np.float32), y[:, None].astype(np.float32)
