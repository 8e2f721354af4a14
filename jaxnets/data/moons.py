"""The inter-twinning moons of Ganin et al. (2016, section 5.1): a labelled source domain and, as the unlabelled
target domain, the same distribution rotated by 35 degrees about the data's centre."""

from __future__ import annotations

import numpy as np


def two_moons(n: int = 300, noise: float = 0.1, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``n`` points (float32, (n, 2)) on two interleaving half circles with Gaussian ``noise``, and their labels
    (int32: 0 upper moon, 1 lower moon), half of each, shuffled; centred on the origin."""
    if n < 2 or noise < 0:
        raise ValueError(f"two_moons needs n >= 2 points and noise >= 0; got n={n}, noise={noise}")
    rng = np.random.default_rng(seed)
    k = n // 2
    t = rng.uniform(0, np.pi, n)
    upper = np.stack([np.cos(t[:k]), np.sin(t[:k])], 1)
    lower = np.stack([1 - np.cos(t[k:]), 0.5 - np.sin(t[k:])], 1)
    x = np.concatenate([upper, lower]) - np.array([0.5, 0.25]) + rng.normal(0, noise, (n, 2))
    y = np.concatenate([np.zeros(k), np.ones(n - k)]).astype(np.int32)
    order = rng.permutation(n)
    return x[order].astype(np.float32), y[order]


def rotate(x: np.ndarray, degrees: float = 35.0) -> np.ndarray:
    """Points ``(n, 2)`` rotated anticlockwise by ``degrees`` about the origin."""
    a = np.deg2rad(degrees)
    r = np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]], np.float32)
    return (np.asarray(x, np.float32) @ r.T).astype(np.float32)
