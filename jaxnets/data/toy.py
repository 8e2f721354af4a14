"""File-free datasets embedded in the library: XOR's four points and two interleaved spirals."""

from __future__ import annotations

import numpy as np


def xor() -> tuple[np.ndarray, np.ndarray]:
    """The four XOR points in {0,1}^2 with label x1 != x2 (the set a single-layer perceptron cannot fit)."""
    x = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=np.float32)
    y = np.array([0, 1, 1, 0], dtype=np.int32)
    return x, y


def spirals(n: int = 512, noise: float = 0.05, turns: float = 1.5, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Two interleaved 2D spirals, ``n`` points split evenly between classes 0 and 1; deterministic for a seed."""
    rng = np.random.default_rng(seed)
    half = n // 2
    t = np.sqrt(rng.uniform(0.0, 1.0, half)) * turns * 2 * np.pi  # sqrt: points spread evenly along the arm
    arm = np.stack([t * np.cos(t), t * np.sin(t)], axis=1) / (turns * 2 * np.pi)
    x = np.concatenate([arm, -arm]) + noise * rng.standard_normal((2 * half, 2))
    y = np.concatenate([np.zeros(half, np.int32), np.ones(half, np.int32)])
    order = rng.permutation(2 * half)
    return x[order].astype(np.float32), y[order]
