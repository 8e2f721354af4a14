"""Few-shot and metric-learning batches: disjoint class splits, N-way K-shot episodes and same/different pairs.

Everything is seeded numpy: ``episodes`` returns the examples of each episode class-major (class 0's K support then
Q query examples, then class 1's, ...), so an episode's labels are implicit and the learner never sees which
dataset classes they were.
"""

from __future__ import annotations

import numpy as np


def _by_class(y: np.ndarray, classes) -> list[np.ndarray]:
    groups = [np.flatnonzero(y == c) for c in classes]
    for c, g in zip(classes, groups, strict=True):
        if len(g) == 0:
            raise ValueError(f"class {c} has no examples in the labels given")
    return groups


def episode_indices(
    y: np.ndarray, classes, n_way: int, k_shot: int, n_query: int, episodes: int, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Indices (episodes, n_way * (k_shot + n_query)) into ``y`` of ``episodes`` N-way K-shot episodes drawn from
    ``classes`` only, class-major, and the dataset classes of each episode (episodes, n_way)."""
    classes = np.asarray(sorted(set(np.asarray(classes).tolist())))
    if not 2 <= n_way <= len(classes) or k_shot < 1 or n_query < 1 or episodes < 1:
        raise ValueError(
            f"need 2 <= n_way <= {len(classes)} classes, k_shot >= 1, n_query >= 1, episodes >= 1; "
            f"got n_way={n_way}, k_shot={k_shot}, n_query={n_query}, episodes={episodes}"
        )
    groups = _by_class(np.asarray(y), classes)
    per = k_shot + n_query
    small = [int(c) for c, g in zip(classes, groups, strict=True) if len(g) < per]
    if small:
        raise ValueError(f"classes {small} have fewer than k_shot + n_query = {per} examples")
    rng = np.random.default_rng(seed)
    idx = np.empty((episodes, n_way * per), np.int64)
    chosen = np.empty((episodes, n_way), np.int64)
    for e in range(episodes):
        picks = rng.choice(len(classes), n_way, replace=False)
        chosen[e] = classes[picks]
        idx[e] = np.concatenate([rng.choice(groups[p], per, replace=False) for p in picks])
    return idx, chosen


def pair_indices(
    y: np.ndarray, classes=None, pairs_per_class: int | None = None, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Balanced same/different pairs, as Keras' mnist_siamese example makes them: for each class, consecutive
    examples of a shuffled order make positive pairs, each followed by a negative pair of the same first example with
    an example of another random class. Returns indices (pairs, 2) and ``same`` (pairs,) int32 in {1, 0}."""
    y = np.asarray(y)
    classes = np.unique(y) if classes is None else np.asarray(sorted(set(np.asarray(classes).tolist())))
    if len(classes) < 2:
        raise ValueError(f"pairs need at least 2 classes; got {classes.tolist()}")
    rng = np.random.default_rng(seed)
    groups = [rng.permutation(g) for g in _by_class(y, classes)]
    n = min(len(g) for g in groups) - 1
    n = n if pairs_per_class is None else min(n, pairs_per_class)
    if n < 1:
        raise ValueError("every class needs at least 2 examples to make a positive pair")
    out = []
    for c, g in enumerate(groups):
        for i in range(n):
            other = (c + rng.integers(1, len(classes))) % len(classes)
            out += [(g[i], g[i + 1]), (g[i], groups[other][i])]
    same = np.tile(np.array([1, 0], np.int32), len(out) // 2)
    return np.asarray(out, np.int64), same
